"""Score, then cost: a candidate that does as well for less is kept as `keep (cheaper)`.

`ScoreThenCost` wraps the paired gate. The score decides first, with the paired
gate's own statistics: a significant gain is kept, a significant loss discarded,
and a candidate whose score fell is never kept for a saving: the tasks where it did
worse get more attempts, and a loss in all that remains after them, or a loss on one
task unlikely to be chance (p <= 0.1), bars it. When the score holds, the cost
measure (effort.py: usd, tokens, turns or time) is compared per task, paired with
the parent: each task's attempts are scaled by that task's mean cost (so a costly
task does not outweigh the rest), and a permutation test within each task says how
likely a saving this large is by chance. A saving beyond noise (at the gate's
confidence) keeps the candidate; a saving not yet clear earns more attempts, as an
unclear gain does. The simplicity tie-break comes last, only when score and cost are
both equal, with at least two attempts of the candidate on every task.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

from autoagent.strategies.gate import Decision, Gate, PairedGate
from autoagent.strategies.stats import Outcomes, compare, mean

Costs = tuple[str, Outcomes, Outcomes]  # the measure, the parent's costs by task, the candidate's


@dataclass(frozen=True)
class CostComparison:
    change: float  # relative change of the cost per task, candidate against parent (-0.3: 30% cheaper)
    before: float | None  # the parent's cost per task on the tasks compared
    after: float | None
    p_cheaper: float  # chance of a saving this large if the two cost the same
    p_costlier: float  # chance of an increase this large if the two cost the same
    tasks: int


def compare_costs(parent: Outcomes, candidate: Outcomes, tasks: list[str], permutations: int = 2000,
                  seed: int = 0) -> CostComparison:  # fmt: skip
    """A paired permutation test of cost: within each task the attempts' labels are shuffled.
    Each task's values are divided by its pooled mean, so every task weighs the same."""
    paired = [t for t in tasks if parent.get(t) and candidate.get(t) and sum(parent[t] + candidate[t]) > 0]
    if not paired:
        return CostComparison(0.0, None, None, 1.0, 1.0, 0)
    observed, nulls = 0.0, []
    for task in paired:
        pooled = parent[task] + candidate[task]
        scale = mean(pooled)
        scaled = [v / scale for v in pooled]
        k = len(candidate[task])
        observed += mean(scaled[len(parent[task]):]) - mean(scaled[: len(parent[task])])
        if len(set(scaled)) > 1:
            nulls.append(_task_null(scaled, k, random.Random(seed * 7919 + len(nulls))))
    rng = random.Random(seed)
    draws = [sum(rng.choice(null) for null in nulls) for _ in range(permutations)] if nulls else [0.0]
    eps = 1e-9
    p_cheaper = (1 + sum(d <= observed + eps for d in draws)) / (1 + len(draws))
    p_costlier = (1 + sum(d >= observed - eps for d in draws)) / (1 + len(draws))
    before = mean([mean(parent[t]) for t in paired])
    after = mean([mean(candidate[t]) for t in paired])
    change = mean([mean(candidate[t]) / mean(parent[t]) - 1 for t in paired if mean(parent[t]) > 0])
    return CostComparison(change, before, after, min(p_cheaper, 1.0), min(p_costlier, 1.0), len(paired))


def _task_null(pooled: list[float], k: int, rng: random.Random, limit: int = 200) -> list[float]:
    """The task's difference (candidate minus parent mean) under every split of its attempts,
    or under `limit` random ones when there are more."""
    n = len(pooled)
    if math.comb(n, k) <= limit:
        splits = itertools.combinations(range(n), k)
    else:
        splits = (rng.sample(range(n), k) for _ in range(limit))
    total = sum(pooled)
    return [sum(pooled[i] for i in s) / k - (total - sum(pooled[i] for i in s)) / (n - k) for s in splits]


@dataclass
class ScoreThenCost:
    """The paired gate on the score; at equal score, the cost measure; then simplicity."""

    score: PairedGate
    permutations: int = 2000
    task_tolerance: float = 0.1  # a loss on one task this unlikely to be chance bars a saving
    worse_attempts: int = 1  # extra attempts per round on a task where it did worse than its parent
    simpler_attempts: int = 2  # attempts on every task before a simpler harness is called as good

    @property
    def name(self) -> str:
        return f"{self.score.name}, then cost"

    @property
    def staged(self) -> bool:
        return self.score.staged

    @property
    def max_rounds(self) -> int:
        return self.score.max_rounds

    def holds_up(self, parent: Outcomes, candidate: Outcomes, tasks: list[str]) -> Decision:
        return self.score.holds_up(parent, candidate, tasks)

    def decide(self, parent: Outcomes, candidate: Outcomes, tasks: list[str], simpler: bool,
               round: int = 0, expected: list[str] | None = None, costs: Costs | None = None) -> Decision:  # fmt: skip
        if costs is None:  # nothing to compare cost with: the score gate alone
            return self.score.decide(parent, candidate, tasks, simpler, round, expected)
        decision = self.score.decide(parent, candidate, tasks, False, round, expected)
        if decision.verdict in ("keep", "more"):  # score first
            return decision
        measure, parent_cost, candidate_cost = costs
        cost = compare_costs(parent_cost, candidate_cost, tasks, self.permutations, seed=round)
        said = f"{measure} per task {_amount(measure, cost.before)} -> {_amount(measure, cost.after)} ({cost.change:+.0%}"
        luck = f"{said}, p={cost.p_cheaper:.3f} that it is luck)"
        last = round >= self.score.max_rounds
        lost = self._lost(parent, candidate, tasks, last)
        if lost:  # a loss is never traded for a saving
            return Decision(decision.verdict, f"{decision.reason}; {lost}")
        worse = {t: self.worse_attempts for t in tasks
                 if candidate.get(t) and parent.get(t) and mean(candidate[t]) < mean(parent[t])}  # fmt: skip
        if cost.tasks and cost.change < 0:
            sure = cost.p_cheaper <= (1 - self.score.confidence) / 2
            if sure and (last or not worse):
                return Decision("keep", f"cheaper at equal score: {luck}; score {decision.reason}", basis="cheaper")
            if not last:  # is the loss chance? is the saving?
                more = worse | ({} if sure else {t: 1 for t in tasks if candidate_cost.get(t) and parent_cost.get(t)})
                return Decision("more", f"{decision.reason}; {luck}: not yet clear", more)
        if simpler and (last or not worse) and cost.p_costlier > self.score.collateral_tolerance:
            few = {t: 1 for t in tasks if len(candidate.get(t, [])) < self.simpler_attempts}
            if not few:
                return Decision("keep", f"{decision.reason}: as good, as costly ({said})), and the harness "
                                        "is simpler", basis="simpler")  # fmt: skip
            if not last:
                return Decision("more", f"{decision.reason}; simpler: is it as good? not yet clear", few)
        return Decision(decision.verdict, f"{decision.reason}; not cheaper: {said})") if cost.tasks else decision

    def _lost(self, parent: Outcomes, candidate: Outcomes, tasks: list[str], last: bool) -> str | None:
        """Why the score is worse, if it is: in all (clearly, or still after every extra round), or
        on one task (a loss unlikely to be chance there)."""
        score = compare(parent, candidate, tasks)
        if score.gain < 0 and (last or score.p_worse <= 1 - self.score.confidence):
            return f"worse (p={score.p_worse:.3f} that it is luck)"
        for task in (t for t in tasks if parent.get(t) and candidate.get(t)):
            one = compare(parent, candidate, [task])
            if one.gain < 0 and one.p_worse <= self.task_tolerance:
                return f"worse on {task} (p={one.p_worse:.3f} that it is luck)"
        return None


def _amount(measure: str, value: float | None) -> str:
    if value is None:
        return "unknown"
    return f"${value:.4f}" if measure == "usd" else f"{value:,.4g}"


def with_objective(gate: Gate, objective: str) -> Gate:
    """The gate for `[decision] objective`: score-then-cost wraps the paired gate; the
    reference rule is the published one, the score alone."""
    if objective == "score-then-cost" and isinstance(gate, PairedGate):
        return ScoreThenCost(gate)
    return gate


def objective(gate: Gate) -> str:
    """The objective a gate pursues: score, or score-then-cost."""
    return "score-then-cost" if isinstance(gate, ScoreThenCost) else "score"
