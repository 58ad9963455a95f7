"""Splitting the tasks: what the meta-agent works on, what checks it, what is sealed.

- search:   the meta-agent sees these tasks: names, results, traces.
- held-out: only the loop sees them; a candidate that wins on search is kept only
            if it does not lose here.
- test:     sealed; scored once per harness by `autoagent test`, never by the loop.

By explicit lists, or by seeded fractions of the tasks (the same seed, the same split).
Tasks are ranked by a seeded hash of their names, not shuffled: a task added or
excluded later moves at most the tasks at a boundary, never reshuffles the rest.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from autoagent.evaluate.tasks import TaskRef, discover, select


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
    rest = sorted(set(names) - set(held_out) - set(test), key=lambda name: _rank(seed, name))
    n_test = 0 if test else round(test_fraction * len(names))
    n_held = 0 if held_out else round(held_out_fraction * len(names))
    test = sorted(test or rest[:n_test])
    held_out = sorted(held_out or rest[n_test : n_test + n_held])
    search = sorted(set(names) - set(test) - set(held_out))
    if not search:
        raise ValueError("[splits] leaves no tasks for the meta-agent to work on")
    return Splits(search, held_out, test)


def choose(tasks_dir: Path, include: list[str] | None, exclude: list[str] | None,
           settings: dict) -> tuple[list[TaskRef], Splits]:  # fmt: skip
    """The tasks of a run (after include and exclude) and their split; ValueError if it cannot be."""
    tasks = select(discover(tasks_dir), include, exclude)
    names = [t.name for t in tasks]
    return tasks, split(names, **settings) if settings else Splits(names, [], [])


def _rank(seed: int, name: str) -> str:
    return hashlib.sha256(f"{seed}:{name}".encode()).hexdigest()
