"""What the commands print: Rich tables and a progress bar fed by trial events."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from autoagent import cost_charts, lineage
from autoagent.evaluate import EvalResult, Finding
from autoagent.spend import money

console = Console(emoji=False)  # ":X:" in a name or a message is text, not an emoji
errors = Console(stderr=True, emoji=False)
WIDTH_OFF_TERMINAL = 200  # a log file or a pipe: no wrapping at 80 columns


def fit_output() -> None:
    """Off a terminal (and unless COLUMNS says otherwise), lines are not wrapped and tables
    may be as wide as WIDTH_OFF_TERMINAL; on one, Rich follows the terminal's width."""
    for each in (console, errors):
        wide = not each.is_terminal and not os.environ.get("COLUMNS")
        each.width = WIDTH_OFF_TERMINAL if wide else None
        each.soft_wrap = wide


class Tally:
    """Finished trials as they come: rewards per agent (`check` runs two), and how many
    were cancelled (Ctrl-C) rather than finished."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.rewards: dict[str, list[float]] = {}
        self.cancelled = 0

    @property
    def finished(self) -> int:
        return sum(map(len, self.rewards.values()))

    def mean(self, agent: str = "") -> float:
        rewards = self.rewards.get(agent) or [0.0]
        return sum(rewards) / len(rewards)

    def add(self, event: dict[str, Any]) -> str | None:
        """Count an `end` event; the line to show for it (None for a cancelled trial)."""
        if event.get("error") == "CancelledError":
            self.cancelled += 1
            return None
        agent = event.get("agent", "")
        rewards = event.get("rewards") or {}
        reward = float(rewards.get("reward", 0.0)) if not event.get("error") else 0.0
        self.rewards.setdefault(agent, []).append(reward)
        what = event["error"] or rewards.get("reward", "-")
        mean = f"{agent} mean" if agent else "mean"
        return f"{agent + ' ' if agent else ''}{event['task']}: {what} ({mean} {self.mean(agent):.2f})"

    def interrupted(self) -> str:
        means = ", ".join(f"{agent + ' ' if agent else ''}mean {self.mean(agent):.2f}" for agent in self.rewards)
        return (f"Interrupted: {self.finished} of {self.total} trials finished"
                + (f" ({means})" if means else "")
                + (f", {self.cancelled} cancelled" if self.cancelled else "") + ".")  # fmt: skip


@contextlib.contextmanager
def trial_progress(total: int, label: str, quiet: bool = False) -> Iterator[Any]:
    """A progress bar over `total` trials (a line per trial off a terminal; nothing when
    quiet); yields the callback for trial events, whose `tally` counts them."""
    tally = Tally(total)

    def on_event(event: dict[str, Any]) -> None:
        if event.get("event") != "end" or (line := tally.add(event)) is None or quiet:
            return
        if console.is_terminal:
            progress.update(bar, advance=1, status=escape(line))
        else:  # a log file or CI: one plain line per finished trial
            console.print(f"[{tally.finished}/{total}] {escape(line)}", highlight=False)

    on_event.tally = tally
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
    if quiet or not console.is_terminal:
        yield on_event
        return
    with progress:
        yield on_event


def _shorten(text: str, width: int) -> str:
    """At most `width` characters, cut at a word with an ellipsis, never mid-word."""
    import textwrap

    return textwrap.shorten(text or "", width, placeholder=" …")


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def eval_table(result: EvalResult, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for column in ("task", "reward", "error", "time", "turns", "tokens in/out", "cost"):
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
                escape(note) if note else "",
                f"{_num(trial.seconds, '.0f')}s" if trial.seconds is not None else "-",
                _num(trial.turns, "d"),
                tokens + (f" ({trial.cached_tokens:,} cached)" if trial.cached_tokens else ""),
                f"${trial.cost_usd:.4f}" if trial.cost_usd is not None else "unknown" if _unpriced(trial) else "-",
            )
    return table


def _unpriced(trial) -> bool:
    """Model calls were made, and at least one had no price."""
    return trial.cost_usd is None and bool(trial.input_tokens or trial.output_tokens)


def eval_summary(result: EvalResult) -> str:
    parts = [f"[bold]score {result.score:.3f}[/]", f"passed {result.passed}/{result.total}"]
    if result.errors:
        parts.append("errors " + ", ".join(f"{n} {k}" for k, n in sorted(result.errors.items())))
    if result.retried:
        parts.append(f"{len(result.retried)} infrastructure failures retried")
    unknown = any(_unpriced(trial) for trial in result.trials)
    if result.cost_usd is not None or unknown:
        parts.append("cost " + money(result.cost_usd or 0.0, unknown))
    return " · ".join(parts)


def check_table(findings: list[Finding]) -> Table:
    table = Table(title="Task soundness (reference solution must score 1, doing nothing 0)",
                  title_justify="left")  # fmt: skip
    for column in ("task", "oracle", "nothing", "verdict"):
        table.add_column(column, justify="left" if column in ("task", "verdict") else "right")
    for finding in findings:
        verdict = "[green]sound[/]" if finding.sound else "[red]" + escape("; ".join(finding.problems)) + "[/]"
        if finding.warnings:
            verdict += " [yellow]" + escape("; ".join(finding.warnings)) + "[/]"
        table.add_row(
            escape(finding.name),
            _num(finding.oracle, ".2f"),
            _num(finding.nop, ".2f"),
            verdict,
        )
    return table


def doctor_table(checks) -> Table:
    table = Table(title="autoagent doctor", title_justify="left")
    for column in ("", "check", "found", "fix"):
        table.add_column(column)
    for check in checks:
        mark = "[green]ok[/]" if check.ok else ("[red]FAIL[/]" if check.required else "[yellow]warn[/]")
        table.add_row(mark, escape(check.name), escape(check.detail), escape(check.fix) if not check.ok else "")
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
    if len(live.in_flight) > 1:
        parts.append(f"{len(live.in_flight)} candidates in flight")
    if live.best:
        parts.append(f"best {live.best['passed']}/{live.best['total']} (experiment {live.best['id']})")
    spend = live.spend or {}
    budget = live.budget.get("usd") if live.budget else None
    unknown = live.spend_unknown or []
    spent = (f"spent task {money(spend.get('task', 0), 'task' in unknown, 2)}"
             f"{',' if unknown else ' +'} meta {money(spend.get('meta', 0), 'meta' in unknown, 2)}")  # fmt: skip
    parts.append(spent + (f" of ${budget:g}" if budget else ""))
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


def status_view(root, ledger_experiments, live, stop_reason: str | None, spent: dict[str, float],
                unknown: list[str] = (), meta_failures: list[dict] | None = None) -> list[Any]:  # fmt: skip
    """What `autoagent status` prints: one screen, whatever state the workspace is in."""
    out: list[Any] = []
    if not ledger_experiments and live is None:
        out.append(f"No loop runs yet in {root}. Start one with [bold]autoagent run[/] "
                   "(or see the loop work first: autoagent demo).")  # fmt: skip
        evals = sorted((root / ".autoagent" / "jobs").glob("eval-*/result.json"), key=lambda p: p.stat().st_mtime)
        if evals:
            out.append(f"{len(evals)} `autoagent eval` job{'s' * (len(evals) != 1)} so far; the latest: "
                       f"{evals[-1].parent}")  # fmt: skip
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
        out += [escape(line) for line in (cost_charts.effort_note(best), cost_charts.saturated(final)) if line]
    counts: dict[str, int] = {}
    for e in final:
        counts[e.status] = counts.get(e.status, 0) + 1
    proposals = lineage.proposals(final)  # a superseded one counts as kept when its composition was
    keeps = len(lineage.landed(final))
    out.append("Experiments: " + ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
               + (f" · keep rate {keeps}/{len(proposals)}" if proposals else ""))  # fmt: skip
    if len(kept) > 1:
        out.append(f"Lineage of the best: {lineage.chain_line(final)}")
    if meta_failures:
        last = meta_failures[-1]
        out.append(f"[yellow]Failed proposals: {len(meta_failures)}[/] (the meta-agent gave no usable change; "
                   f"the last, before experiment {last.get('experiment')}: {escape(str(last.get('reason')))})")  # fmt: skip
    out.append(f"Spent: {money(spent['task'], 'task' in unknown)} on task runs, "
               f"{money(spent['meta'], 'meta' in unknown)} on the meta-agent (.autoagent/spend.jsonl)"
               + (" · unknown: calls to a model without a price; set its price in autoagent.toml "
                  "(input_usd_per_mtok, output_usd_per_mtok)" if unknown else ""))  # every call: spot checks and failed proposals too
    table = Table(title="Last experiments", title_justify="left")
    for column in ("#", "status", "passed", "description"):
        table.add_column(column)
    for e in final[-6:]:
        passed = "" if e.passed is None else f"{e.passed}/{e.total}"
        table.add_row(str(e.id), e.verdict, passed, escape(_shorten(e.description or e.reason, 90)))
    out.append(table)
    return out
