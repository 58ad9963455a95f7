"""What the commands print: Rich tables and a progress bar fed by trial events."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autoagent.evaluate import EvalResult, Finding

console = Console()
errors = Console(stderr=True)


@contextlib.contextmanager
def trial_progress(total: int, label: str, quiet: bool = False) -> Iterator[Any]:
    """A progress bar over `total` trials (a line per trial off a terminal; nothing when
    quiet); yields the callback for trial events."""
    if quiet:
        yield lambda event: None
        return
    progress = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )
    bar = progress.add_task(label, total=total, status="")
    finished: list[float] = []

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") != "end":
            return
        rewards = event.get("rewards") or {}
        finished.append(float(rewards.get("reward", 0.0)) if not event.get("error") else 0.0)
        mean = sum(finished) / len(finished)
        last = f"{event['task']}: {event['error'] or rewards.get('reward', '-')}"
        if console.is_terminal:
            progress.update(bar, advance=1, status=f"mean {mean:.2f} · {escape(last)[:50]}")
        else:  # a log file or CI: one plain line per finished trial
            console.print(f"[{len(finished)}/{total}] {escape(last)} (mean {mean:.2f})", highlight=False)

    if not console.is_terminal:
        yield on_event
        return
    with progress:
        yield on_event


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def eval_table(result: EvalResult, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("task", "reward", "error", "time", "tokens in/out", "cost"):
        table.add_column(column, justify="right" if column != "task" and column != "error" else "left")
    for task in result.tasks:
        for index, trial in enumerate(task.trials):
            name = task.name if index == 0 else ""
            style = "green" if trial.passed else ("red" if trial.error else "")
            tokens = (
                f"{_num(trial.input_tokens, ',')}/{_num(trial.output_tokens, ',')}"
                if trial.input_tokens is not None or trial.output_tokens is not None
                else "-"
            )
            note = "; ".join(filter(None, [trial.error, *trial.warnings]))
            table.add_row(
                escape(name),
                f"[{style}]{trial.reward:.2f}[/]" if style else f"{trial.reward:.2f}",
                escape(note)[:120] if note else "",
                f"{_num(trial.seconds, '.0f')}s" if trial.seconds is not None else "-",
                tokens,
                f"${trial.cost_usd:.4f}" if trial.cost_usd is not None else "-",
            )
    return table


def eval_summary(result: EvalResult) -> str:
    parts = [f"[bold]score {result.score:.3f}[/]", f"passed {result.passed}/{result.total}"]
    if result.errors:
        parts.append("errors " + ", ".join(f"{n} {k}" for k, n in sorted(result.errors.items())))
    if result.retried:
        parts.append(f"{len(result.retried)} infrastructure failures retried")
    if result.cost_usd is not None:
        parts.append(f"cost ${result.cost_usd:.4f}")
    return " · ".join(parts)


def check_table(findings: list[Finding]) -> Table:
    table = Table(title="Task soundness (reference solution must score 1, doing nothing 0)",
                  title_justify="left")  # fmt: skip
    for column in ("task", "oracle", "nothing", "verdict"):
        table.add_column(column, justify="left" if column in ("task", "verdict") else "right")
    for finding in findings:
        verdict = "[green]sound[/]" if finding.sound else "[red]" + escape("; ".join(finding.problems))[:160] + "[/]"
        if finding.warnings:
            verdict += " [yellow]" + escape("; ".join(finding.warnings))[:160] + "[/]"
        table.add_row(
            escape(finding.name),
            _num(finding.oracle, ".2f"),
            _num(finding.nop, ".2f"),
            verdict,
        )
    return table


# -- runs -------------------------------------------------------------------------------


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def live_line(live) -> str:
    """One line: where a run stands (for the live display and `autoagent status`)."""
    parts = [f"experiment {live.experiment}" if live.experiment is not None else "starting", live.phase]
    if live.trials_total:
        parts.append(f"trials {live.trials_done}/{live.trials_total}")
    if live.best:
        parts.append(f"best {live.best['passed']}/{live.best['total']} (experiment {live.best['id']})")
    spend = live.spend or {}
    budget = live.budget.get("usd") if live.budget else None
    money = f"spent task ${spend.get('task', 0):.2f} + meta ${spend.get('meta', 0):.2f}"
    parts.append(money + (f" of ${budget:g}" if budget else ""))
    parts.append(f"elapsed {_duration(live.elapsed)}")
    return " · ".join(parts)


@contextlib.contextmanager
def run_view(mode: str) -> Iterator[tuple[Any, Any]]:
    """(report, on_status) callbacks for the loop. mode: live (a status line pinned under the
    log, on a terminal), plain (log lines only: CI, a file) or quiet (nothing but the end)."""
    import time as clock

    def line(text: str) -> None:
        if mode != "quiet":
            console.print(f"[dim]{clock.strftime('%H:%M:%S')}[/] {escape(text)}", highlight=False)

    if mode != "live":
        yield line, None
        return
    from rich.live import Live
    from rich.text import Text

    with Live(Text(""), console=console, refresh_per_second=2, transient=True) as view:
        yield line, lambda live: view.update(Text(live_line(live), style="bold cyan"))


def status_view(root, ledger_experiments, live, stop_reason: str | None, spent: dict[str, float]) -> list[Any]:
    """What `autoagent status` prints: one screen, whatever state the workspace is in."""
    out: list[Any] = []
    if not ledger_experiments and live is None:
        out.append(f"No runs yet in {root}. Start one with [bold]autoagent run[/] "
                   "(or see the loop work first: autoagent demo).")  # fmt: skip
        return out
    if live is not None and live.running:
        out.append(f"[bold green]Running[/] (pid {live.pid}): {escape(live_line(live))}")
        if live.last:
            out.append(f"  last: {escape(live.last)}")
    else:
        out.append(f"[bold]Not running.[/] Last stop: {escape(stop_reason or 'unknown (the run was killed?)')}")
    final = [e for e in ledger_experiments if e.final]
    kept = [e for e in final if e.status in ("baseline", "keep")]
    if kept:
        best = kept[-1]
        out.append(f"Best: experiment {best.id}, passed {best.passed}/{best.total}, "
                   f"commit {(best.commit or '')[:7]} ({escape(best.description)})")  # fmt: skip
    counts: dict[str, int] = {}
    for e in final:
        counts[e.status] = counts.get(e.status, 0) + 1
    proposals = [e for e in final if e.id > 0]
    keeps = sum(e.status == "keep" for e in proposals)
    out.append("Experiments: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
               + (f" · keep rate {keeps}/{len(proposals)}" if proposals else ""))  # fmt: skip
    out.append(f"Spent: ${spent['task']:.4f} on task runs, ${spent['meta']:.4f} on the meta-agent "
               "(.autoagent/spend.jsonl)")  # every call: spot checks and failed proposals too
    table = Table(title="Last experiments", title_justify="left")
    for column in ("#", "status", "passed", "description"):
        table.add_column(column)
    for e in final[-6:]:
        passed = "" if e.passed is None else f"{e.passed}/{e.total}"
        table.add_row(str(e.id), e.status, passed, escape((e.description or e.reason)[:70]))
    out.append(table)
    return out
