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
def trial_progress(total: int, label: str) -> Iterator[Any]:
    """A progress bar over `total` trials; yields the callback for trial events."""
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
        table.add_row(
            escape(finding.name),
            _num(finding.oracle, ".2f"),
            _num(finding.nop, ".2f"),
            verdict,
        )
    return table
