"""Score, then cost: as good and cheaper beyond noise is kept; a loss is never traded for a
saving; simplicity breaks a tie only with two attempts on every task."""

from autoagent.strategies.cheaper import ScoreThenCost, compare_costs, objective, with_objective
from autoagent.strategies.gate import PairedGate, ReferenceGate

TASKS = ["a", "b", "c", "d"]


def per_task(*rows):
    return dict(zip(TASKS, [list(map(float, r)) for r in rows]))


PARENT = per_task([1, 1], [1, 1], [0, 0], [1, 1])
PARENT_COST = per_task([100, 110], [40, 44], [900, 1000], [10, 12])  # tasks differ 100-fold in cost


def test_the_same_score_for_about_half_the_cost_is_kept_as_cheaper_once_it_is_clear():
    gate = ScoreThenCost(PairedGate())
    same = per_task([1, 1], [1, 1], [0, 0], [1, 1])
    half = per_task([50, 52], [21, 20], [460, 470], [5, 6])
    decision = gate.decide(PARENT, same, TASKS, False, 1, [], costs=("tokens", PARENT_COST, half))
    assert (decision.verdict, decision.basis) == ("keep", "cheaper")
    assert "cheaper at equal score: tokens per task" in decision.reason and "(-5" in decision.reason
    once = per_task([1], [1], [0], [1])
    two_cheaper = per_task([50], [21], [950], [11])  # one attempt each, two tasks cheaper: not yet clear
    unsure = gate.decide(PARENT, once, TASKS, False, 0, [], costs=("tokens", PARENT_COST, two_cheaper))
    assert unsure.verdict == "more" and unsure.more == {t: 1 for t in TASKS}


def test_a_costlier_or_equally_costly_candidate_is_not_kept():
    gate = ScoreThenCost(PairedGate())
    same = per_task([1, 1], [1, 1], [0, 0], [1, 1])
    for costs in (PARENT_COST, per_task([150, 160], [60, 66], [1300, 1400], [15, 18])):
        decision = gate.decide(PARENT, same, TASKS, False, 3, [], costs=("tokens", PARENT_COST, costs))
        assert decision.verdict == "discard" and "not cheaper" in decision.reason


def test_a_lost_task_is_never_traded_for_a_saving():
    gate = ScoreThenCost(PairedGate())
    lost = per_task([0, 0, 0], [1, 1], [0, 0], [1, 1])
    cheap = per_task([5, 5, 5], [20, 21], [450, 460], [5, 6])
    decision = gate.decide(PARENT, lost, TASKS, False, 2, [], costs=("tokens", PARENT_COST, cheap))
    assert decision.verdict == "discard" and "worse on a" in decision.reason
    once = per_task([0], [1, 1], [0, 0], [1, 1])  # one failed attempt: it may be chance, look again
    look = gate.decide(PARENT, once, TASKS, False, 0, [], costs=("tokens", PARENT_COST, cheap))
    assert look.verdict == "more" and look.more.get("a") == 1


def test_simplicity_breaks_a_tie_of_score_and_cost_only_with_two_attempts_everywhere():
    gate = ScoreThenCost(PairedGate())
    once = per_task([1], [1], [0], [1])
    costs = per_task([105], [42], [950], [11])
    first = gate.decide(PARENT, once, TASKS, True, 0, [], costs=("tokens", PARENT_COST, costs))
    assert first.verdict == "more" and first.more == {t: 1 for t in TASKS}
    twice = per_task([1, 1], [1, 1], [0, 0], [1, 1])
    kept = gate.decide(PARENT, twice, TASKS, True, 1, [], costs=("tokens", PARENT_COST, PARENT_COST))
    assert (kept.verdict, kept.basis) == ("keep", "simpler")
    costlier = per_task([200, 210], [80, 84], [1800, 1900], [20, 22])
    assert gate.decide(PARENT, twice, TASKS, True, 1, [], costs=("tokens", PARENT_COST, costlier)).verdict != "keep"


def test_cost_comparison_weighs_every_task_alike():
    cheap_big_task = per_task([100, 110], [40, 44], [100, 100], [10, 12])  # only the costly task got cheaper
    c = compare_costs(PARENT_COST, cheap_big_task, TASKS, seed=1)
    assert -0.25 < c.change < -0.2  # a 90% saving on one task of four
    assert compare_costs(PARENT_COST, PARENT_COST, TASKS).p_cheaper > 0.3


def test_the_objective_wraps_the_paired_gate_only():
    assert objective(with_objective(PairedGate(), "score-then-cost")) == "score-then-cost"
    assert objective(with_objective(PairedGate(), "score")) == "score"
    assert isinstance(with_objective(ReferenceGate(), "score-then-cost"), ReferenceGate)
