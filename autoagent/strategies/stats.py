"""The statistics behind the noise-aware gate: paired permutation tests and noise floors.

Outcomes are per task: the rewards of each attempt (0..1). Comparisons are paired
by task: within each task, which attempts belong to the parent and which to the
candidate is exchangeable if the two harnesses are equally good, so shuffling
those labels gives the null distribution of the total difference.
"""

from __future__ import annotations

import itertools
import math
from collections import Counter
from dataclasses import dataclass

Outcomes = dict[str, list[float]]  # task -> reward of each attempt


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def difference(parent: Outcomes, candidate: Outcomes, tasks: list[str]) -> float:
    """Total expected-reward gain over `tasks`: sum of per-task mean differences."""
    return sum(mean(candidate[t]) - mean(parent[t]) for t in tasks if parent.get(t) and candidate.get(t))


@dataclass(frozen=True)
class Comparison:
    gain: float  # candidate minus parent, in tasks (sum of per-task mean differences)
    p_better: float  # chance of a gain this large if the two were equally good
    p_worse: float  # chance of a loss this large if the two were equally good
    tasks: int  # tasks both were evaluated on


def compare(parent: Outcomes, candidate: Outcomes, tasks: list[str]) -> Comparison:
    """Exact paired permutation test over `tasks`: the null distribution of the total
    gain is the convolution of each task's, and each task's comes from every way of
    splitting its pooled attempts between the two harnesses."""
    paired = [t for t in tasks if parent.get(t) and candidate.get(t)]
    observed = round(difference(parent, candidate, paired), 9)
    null = {0.0: 1.0}
    for task in paired:
        pooled = parent[task] + candidate[task]
        if len(set(pooled)) > 1:  # a task whose attempts all agree cannot move the total
            null = _convolve(null, _task_null(pooled, len(candidate[task])))
    p_better = sum(p for value, p in null.items() if value >= observed - 1e-9)
    p_worse = sum(p for value, p in null.items() if value <= observed + 1e-9)
    return Comparison(observed, min(p_better, 1.0), min(p_worse, 1.0), len(paired))


def _task_null(pooled: list[float], n_candidate: int) -> dict[float, float]:
    total, n_parent = sum(pooled), len(pooled) - n_candidate
    splits = list(itertools.combinations(pooled, n_candidate))
    counts = Counter(round(sum(s) / n_candidate - (total - sum(s)) / n_parent, 9) for s in splits)
    return {value: count / len(splits) for value, count in counts.items()}


def _convolve(a: dict[float, float], b: dict[float, float]) -> dict[float, float]:
    out: dict[float, float] = {}
    for x, p in a.items():
        for y, q in b.items():
            key = round(x + y, 9)
            out[key] = out.get(key, 0.0) + p * q
    return out


def noise_floor(outcomes: Outcomes, tasks: list[str]) -> float:
    """The standard deviation, in tasks, of one evaluation's `passed` from the per-task
    success rates seen: how far two runs of the same harness drift apart by chance."""
    return math.sqrt(sum(p * (1 - p) for p in (mean(outcomes[t]) for t in tasks if outcomes.get(t))))


def baseline_note(floor: float | None) -> str:
    """What the baseline's ledger row says about chance; nothing claimed that was not measured."""
    if floor is None:
        return ("the starting point; it ran each task once, so there is no noise floor "
                "(set [decision] baseline_attempts = 2 to measure how much runs differ by chance)")  # fmt: skip
    return f"the starting point; two runs of it differ by about {floor:.1f} tasks by chance (the noise floor)"
