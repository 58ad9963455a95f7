"""What a trial cost: model turns, tokens, agent wall time and USD; and the cost measure.

Per trial, from Harbor's `result.json` (agent_result: n_input_tokens, n_cache_tokens,
n_output_tokens, cost_usd; the agent_execution timing) and the ATIF trajectory (its
agent steps are the turns). Anything not recorded stays unknown (None), never 0: a
model without a price has an unknown cost, not a free one.

The cost measure is what the gate compares once the score holds (`[decision]
cost_measure`): usd, tokens (input + output), turns or time (the agent's seconds).
`auto` is USD when every trial compared has a price, tokens otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MEASURES = ("usd", "tokens", "turns", "time")
UNITS = {"usd": "USD", "tokens": "tokens", "turns": "turns", "time": "s"}

Record = dict[str, Any]  # a trial as the ledger has it (results.Trial as a dict)


def turns(trial_dir: str | Path) -> int | None:
    """Model turns: the agent steps of the trial's ATIF trajectory (None without one)."""
    try:
        data = json.loads((Path(trial_dir) / "agent" / "trajectory.json").read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return sum(1 for step in data.get("steps") or [] if step.get("source") == "agent")


def value(trial: Record, measure: str) -> float | None:
    """One trial's cost in `measure`, or None when it is unknown."""
    if measure == "usd":
        return trial.get("cost_usd")
    if measure == "tokens":
        known = [trial.get("input_tokens"), trial.get("output_tokens")]
        return None if None in known else float(sum(known))
    if measure == "turns":
        return trial.get("turns")
    if measure == "time":
        return trial.get("agent_seconds")
    raise ValueError(f"unknown cost measure {measure!r}; choose one of auto, {', '.join(MEASURES)}")


def counted(trials: Iterable[Record]) -> list[Record]:
    """The attempts that count (a smoke run does not)."""
    return [t for t in trials if t.get("label") != "smoke"]


def resolve(measure: str, *trial_sets: Iterable[Record]) -> str:
    """`auto`: USD when every trial has a price, tokens otherwise; any other measure as is."""
    if measure != "auto":
        return measure
    trials = [t for trials in trial_sets for t in counted(trials)]
    return "usd" if trials and all(t.get("cost_usd") is not None for t in trials) else "tokens"


def by_task(trials: Iterable[Record], measure: str, tasks: Iterable[str] | None = None) -> dict[str, list[float]]:
    """Task -> the known cost of each attempt that counts."""
    wanted = set(tasks) if tasks is not None else None
    out: dict[str, list[float]] = {}
    for trial in counted(trials):
        cost = value(trial, measure)
        if cost is not None and (wanted is None or trial["task"] in wanted):
            out.setdefault(trial["task"], []).append(float(cost))
    return out


def paired(parent: Iterable[Record], candidate: Iterable[Record], measure: str) -> tuple[str, dict, dict]:
    """(the measure used, the parent's costs by task, the candidate's): what the gate compares."""
    parent, candidate = list(parent), list(candidate)
    used = resolve(measure, parent, candidate)
    return used, by_task(parent, used), by_task(candidate, used)


def per_task(trials: Iterable[Record], measure: str, tasks: Iterable[str]) -> float | None:
    """The mean cost of a task: the mean over tasks of each task's mean over its attempts."""
    costs = by_task(trials, measure, tasks)
    means = [sum(v) / len(v) for v in costs.values() if v]
    return sum(means) / len(means) if means else None


def summary(trials: list[Record], tasks: list[str], measure: str, parent: list[Record] | None = None) -> dict:
    """An experiment's effort for the ledger: every measure per task on average, the measure
    the gate used, and its relative change against the parent on the tasks both ran."""
    used = resolve(measure, trials, parent or [])
    out: dict[str, Any] = {m: per_task(trials, m, tasks) for m in MEASURES}
    out["measure"] = used
    if parent:
        mine, theirs = by_task(trials, used, tasks), by_task(parent, used, tasks)
        both = [t for t in mine if theirs.get(t) and sum(theirs[t]) > 0]
        if both:
            ratios = [(sum(mine[t]) / len(mine[t])) / (sum(theirs[t]) / len(theirs[t])) - 1 for t in both]
            out["change"] = sum(ratios) / len(ratios)
    return out


def fmt(measure: str, amount: float | None) -> str:
    """An amount in a measure, for people: $0.0123, 1,234 tokens, 4.5 turns, 12 s."""
    if amount is None:
        return "unknown"
    if measure == "usd":
        return f"${amount:.4f}"
    if measure == "tokens":
        return f"{amount:,.0f} tokens"
    if measure == "turns":
        return f"{amount:.3g} turns"
    return f"{amount:.1f} s"


def line(trial: Record) -> str:
    """A trial's effort in one line: turns, tokens (cached), agent time, USD; unknown said so."""
    tokens = "tokens unknown"
    if trial.get("input_tokens") is not None or trial.get("output_tokens") is not None:
        cached = trial.get("cached_tokens")
        tokens = (f"{_n(trial.get('input_tokens'))} in ({_n(cached)} cached) / "
                  f"{_n(trial.get('output_tokens'))} out tokens")  # fmt: skip
    seconds = trial.get("agent_seconds")
    time = "agent time unknown" if seconds is None else f"agent {seconds:.1f} s"
    usd = trial.get("cost_usd")
    turns = trial.get("turns")
    return ", ".join([
        "turns unknown" if turns is None else f"{turns:g} turn{'s' * (turns != 1)}",
        tokens, time, "USD unknown" if usd is None else f"${usd:.4f}",
    ])  # fmt: skip


def known(trials: list[Record]) -> bool:
    """Was any effort recorded for these trials at all?"""
    keys = ("turns", "input_tokens", "output_tokens", "agent_seconds", "cost_usd")
    return any(t.get(k) is not None for t in trials for k in keys)


def mean_line(trials: list[Record]) -> str:
    """The mean effort of a task's attempts, in the same words as `line`."""
    def avg(key: str) -> float | None:
        values = [t.get(key) for t in trials]
        return None if not values or None in values else sum(values) / len(values)

    keys = ("turns", "input_tokens", "cached_tokens", "output_tokens", "agent_seconds", "cost_usd")
    mean = {k: avg(k) for k in keys}
    if mean["turns"] is not None:
        mean["turns"] = round(mean["turns"], 1)
    return line(mean)


def _n(value: float | None) -> str:
    return "?" if value is None else f"{value:,.0f}"
