"""Parent selection: the best, greedily; or a draw from the Pareto frontier per task, which keeps
a harness that alone solves a task even when it loses overall."""

import random
from collections import Counter

import pytest

from autoagent.ledger import Experiment, Ledger
from autoagent.strategies import parents

TASKS = ["a", "b", "c", "d"]


def harness(id, status, *means, attempts=2, parent_id=0):
    """An experiment whose attempts on each task average `means` (in TASKS order; None: not run)."""
    trials = [{"task": task, "reward": 1.0 if k < round(m * attempts) else 0.0, "trial_dir": f"/t/{id}/{task}/{k}"}
              for task, m in zip(TASKS, means) if m is not None for k in range(attempts)]  # fmt: skip
    return Experiment(id, status, parent_id=None if id == 0 else parent_id, trials=trials,
                      passed=sum(m is not None and m >= 0.5 for m in means), total=len(TASKS))  # fmt: skip


BASELINE = harness(0, "baseline", 1, 0.5, 0, 0)
BEST = harness(1, "keep", 1, 1, 1, 0)  # dominates the baseline
LONE = harness(2, "discard", 0, 0, 0, 0.5)  # 1 task of 4, lower overall, but the only one to solve d
SHADOW = harness(3, "discard", 1, 0.5, 0, 0)  # as good as the baseline, no better: dominated by 1
CUT_SHORT = harness(4, "discard", None, None, 0, 1)  # stopped at the cheap stage: not all outcomes
CRASHED = harness(5, "crash", 0, 0, 0, 1)
EXPERIMENTS = [BASELINE, BEST, LONE, SHADOW, CUT_SHORT, CRASHED]


def test_the_frontier_keeps_the_harness_that_alone_solves_a_task_and_drops_the_dominated():
    members = parents.frontier(EXPERIMENTS, TASKS)
    assert [(e.id, wins) for e, wins in members] == [(1, 3), (2, 1)]  # best on a, b, c; on d


def test_frontier_draws_are_seeded_and_weighted_by_the_tasks_each_is_best_on():
    choose = parents.make("frontier").choose

    def draws(seed):
        rng = random.Random(seed)
        return [choose(EXPERIMENTS, TASKS, BEST, rng).id for _ in range(400)]

    assert draws(7) == draws(7) and draws(7) != draws(8)
    counts = Counter(draws(7))
    assert set(counts) == {1, 2}  # never the dominated, the cut short or the crashed
    assert 0.15 < counts[2] / 400 < 0.35  # a quarter: 1 task against 3


def test_with_nothing_solved_yet_the_frontier_is_the_best():
    nothing = [harness(0, "baseline", 0, 0, 0, 0), harness(1, "discard", 0, 0, 0, 0)]
    assert parents.frontier(nothing, TASKS) == []
    assert parents.make("frontier").choose(nothing, TASKS, nothing[0], random.Random(0)) is nothing[0]


def test_best_is_what_the_ledger_calls_best(tmp_path):
    ledger = Ledger(tmp_path)
    for e in EXPERIMENTS + [harness(6, "indecisive", 1, 1, 1, 1, parent_id=1)]:  # better, not kept
        ledger.save(e)
    chosen = parents.make("best").choose(ledger.experiments(), TASKS, ledger.best(), random.Random(0))
    assert chosen.id == ledger.best().id == 1
    with pytest.raises(ValueError, match="unknown parent selection 'greedy'; choose one of best, frontier"):
        parents.make("greedy")
