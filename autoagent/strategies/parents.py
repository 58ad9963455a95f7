"""Parent selection: which harness the next candidate is proposed from (`[decision] parents`).

- `best` (default): the best so far, the last kept experiment or the baseline. Greedy, as
  the published autoagent is: every proposal builds on the one harness the branch holds.
- `frontier`: GEPA's Pareto frontier per task. Greedy search forgets a harness that solves a
  task no other one does as soon as it loses overall; the frontier keeps it as a parent. Among
  the fully evaluated harnesses (outcomes on every search task: the baseline, keeps, discards,
  indecisive and superseded candidates; a crash or a candidate stopped at the cheap stage has
  too few), those best on at least one search task and dominated by none, each drawn with a
  weight of how many tasks it is best on. The draw is the caller's seeded `rng`, so a run
  resumed from its ledger proposes from the same parents.

A candidate is judged against the parent it was proposed from (ledger: `parent_id`); one that
wins against a parent that is not the best is composed onto the best by the loop.
"""

from __future__ import annotations

import random
from typing import Protocol

from autoagent.ledger import Experiment
from autoagent.scoring import outcomes
from autoagent.strategies.stats import mean

# Statuses of the experiments whose outcomes are a harness's whole record; a crash, a rejection
# or an interruption have none to speak of.
EVALUATED = ("baseline", "keep", "discard", "indecisive", "superseded")


class Parents(Protocol):
    name: str

    def choose(self, experiments: list[Experiment], search_tasks: list[str], best: Experiment,
               rng: random.Random) -> Experiment: ...  # fmt: skip


class Best:
    """The best so far, whatever else was tried."""

    name = "best"

    def choose(self, experiments: list[Experiment], search_tasks: list[str], best: Experiment,
               rng: random.Random) -> Experiment:  # fmt: skip
        return best


class Frontier:
    """A harness from the Pareto frontier per task, weighted by the tasks it is best on; the best
    when nothing is on it yet (before any search task is solved)."""

    name = "frontier"

    def choose(self, experiments: list[Experiment], search_tasks: list[str], best: Experiment,
               rng: random.Random) -> Experiment:  # fmt: skip
        members = frontier(experiments, search_tasks)
        if not members:
            return best
        harnesses, weights = zip(*members)
        return rng.choices(harnesses, weights=weights)[0]


def frontier(experiments: list[Experiment], search_tasks: list[str]) -> list[tuple[Experiment, int]]:
    """The harnesses best on at least one search task that no other one dominates (as good on
    every task, better on one), each with how many tasks it is best on, in id order. A task no
    harness has solved at all (best mean reward 0) makes no one best."""
    scores = {}
    for e in experiments:
        found = outcomes(e)
        if e.status in EVALUATED and all(found.get(t) for t in search_tasks):
            scores[e.id] = (e, [round(mean(found[t]), 9) for t in search_tasks])
    undominated = [(e, mine) for e, mine in scores.values()
                   if not any(_dominates(theirs, mine) for _, theirs in scores.values())]  # fmt: skip
    members = []
    for e, mine in undominated:
        wins = sum(mine[i] > 0 and mine[i] == max(theirs[i] for _, theirs in undominated)
                   for i in range(len(search_tasks)))  # fmt: skip
        if wins:
            members.append((e, wins))
    return sorted(members, key=lambda member: member[0].id)


def _dominates(a: list[float], b: list[float]) -> bool:
    return all(x >= y for x, y in zip(a, b)) and a != b


def make(name: str) -> Parents:
    choices = {"best": Best, "frontier": Frontier}
    if name not in choices:
        raise ValueError(f"unknown parent selection {name!r}; choose one of {', '.join(choices)}")
    return choices[name]()
