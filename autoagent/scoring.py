"""An experiment's scores, from its recorded trials: per task, on the search and held-out
splits, and against its parent (the tasks it fixed and broke, how well it predicted them)."""

from __future__ import annotations

from autoagent.evaluate import effort
from autoagent.evaluate.results import Trial
from autoagent.ledger import TASK_PASS, Experiment
from autoagent.splits import Splits
from autoagent.strategies.stats import Outcomes, mean


def outcomes(experiment: Experiment) -> Outcomes:
    """Rewards by task, of every attempt that counts (a smoke run does not)."""
    found: Outcomes = {}
    for trial in experiment.trials:
        if trial.get("label") != "smoke":
            found.setdefault(trial["task"], []).append(trial["reward"])
    return found


def rewards_by_task(trials: list[Trial]) -> Outcomes:
    found: Outcomes = {}
    for trial in trials:
        found.setdefault(trial.task, []).append(trial.reward)
    return found


def score(experiment: Experiment, splits: Splits, parent: Experiment | None = None,
          cost_measure: str = "auto") -> None:  # fmt: skip
    """Scores on the search tasks it ran, its effort on them; flips and prediction hits against
    the parent."""
    by_task = outcomes(experiment)
    search = [t for t in splits.search if t in by_task]
    experiment.task_scores = {t: mean(rewards) for t, rewards in by_task.items()}
    experiment.total = len(search)
    experiment.passed = sum(experiment.task_scores[t] >= TASK_PASS for t in search)
    rewards = [r for t in search for r in by_task[t]]
    experiment.avg_score = mean(rewards) if rewards else None
    experiment.effort = effort.summary(experiment.trials, search, cost_measure, parent.trials if parent else None)
    held = [t for t in splits.held_out if t in by_task]
    if held:
        experiment.held_out = {"passed": sum(experiment.task_scores[t] >= TASK_PASS for t in held), "total": len(held)}
    if parent is not None:
        before = {t for t, s in parent.task_scores.items() if s >= TASK_PASS}
        after = {t for t, s in experiment.task_scores.items() if s >= TASK_PASS}
        ran = set(experiment.task_scores)
        experiment.flips = {"fixed": sorted(after - before), "broken": sorted((before & ran) - after)}
        if experiment.expected_flips:
            hits = set(experiment.expected_flips) & set(experiment.flips["fixed"])
            experiment.hit_rate = len(hits) / len(experiment.expected_flips)


def smoke_task(parent: Experiment, search: list[str]) -> str:
    """A task the parent passes, if any: a candidate that breaks it is broken."""
    passed = [t for t in search if parent.task_scores.get(t, 0.0) >= 1.0]
    return (passed or search)[0]
