"""Splitting the tasks: what the meta-agent works on, what checks it, what is sealed.

- search:   the meta-agent sees these tasks: names, results, traces.
- held-out: only the loop sees them; a candidate that wins on search is kept only
            if it does not lose here.
- test:     sealed; scored once per harness by `autoagent test`, never by the loop.

By explicit lists, or by seeded fractions of the tasks (the same seed, the same split).
"""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Splits:
    search: list[str]
    held_out: list[str]
    test: list[str]


def split(names: list[str], *, held_out: list[str], test: list[str], held_out_fraction: float,
          test_fraction: float, seed: int) -> Splits:  # fmt: skip
    """Explicit lists win; the rest of the tasks are split by the fractions."""
    unknown = sorted(set(held_out + test) - set(names))
    if unknown:
        raise ValueError(f"[splits] names tasks that do not exist: {', '.join(unknown)}")
    both = sorted(set(held_out) & set(test))
    if both:
        raise ValueError(f"[splits] puts tasks in both held_out and test: {', '.join(both)}")
    rest = sorted(set(names) - set(held_out) - set(test))
    random.Random(seed).shuffle(rest)
    n_test = 0 if test else round(test_fraction * len(names))
    n_held = 0 if held_out else round(held_out_fraction * len(names))
    test = sorted(test or rest[:n_test])
    held_out = sorted(held_out or rest[n_test : n_test + n_held])
    search = sorted(set(names) - set(test) - set(held_out))
    if not search:
        raise ValueError("[splits] leaves no tasks for the meta-agent to work on")
    return Splits(search, held_out, test)
