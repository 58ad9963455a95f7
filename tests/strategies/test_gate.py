from autoagent.strategies.gate import PairedGate, ReferenceGate, complexity, make
from autoagent.workspace import TEMPLATES

HARNESS = (TEMPLATES / "agent.py").read_text()
TASKS = ["a", "b", "c", "d"]


def outcomes(*rows):
    return dict(zip(TASKS, [list(map(float, r)) for r in rows]))


def test_reference_rule_keeps_more_passed_or_equal_and_simpler():
    gate = ReferenceGate()
    parent = outcomes([1], [0], [0], [1])
    assert gate.decide(parent, outcomes([1], [1], [0], [1]), TASKS, False).verdict == "keep"
    assert gate.decide(parent, outcomes([1], [0], [0], [1]), TASKS, False).verdict == "discard"
    assert gate.decide(parent, outcomes([1], [0], [0], [1]), TASKS, True).verdict == "keep"
    assert gate.decide(parent, outcomes([1], [0], [0], [0]), TASKS, True).verdict == "discard"


def test_paired_gate_keeps_claimed_fixes_that_hold_and_asks_for_more_when_unsure():
    gate = PairedGate()
    parent = outcomes([0, 0], [0, 0], [1, 1], [1, 1])
    unsure = gate.decide(parent, outcomes([1], [0], [1], [1]), TASKS, False, 0, expected=["a"])
    assert unsure.verdict == "more" and unsure.more == {"a": 2}
    # Two claimed fixes that hold over three attempts each: p = (1/10)^2.
    sure = gate.decide(parent, outcomes([1, 1, 1], [1, 1, 1], [1], [1]), TASKS, False, 1, expected=["a", "b"])
    assert sure.verdict == "keep" and "claimed" in sure.reason


def test_paired_gate_does_not_keep_a_lucky_extra_pass():
    gate = PairedGate()
    parent = outcomes([1, 0], [0, 0], [1, 1], [1, 1])  # task a passes half the time
    lucky = outcomes([1, 1], [0], [1], [1])  # same harness, one more pass of a
    decisions = [gate.decide(parent, lucky, TASKS, False, r, expected=[]) for r in range(gate.max_rounds + 1)]
    assert all(d.verdict != "keep" for d in decisions)


def test_paired_gate_discards_clear_losses_and_held_out_losses():
    gate = PairedGate()
    parent = outcomes([1, 1], [1, 1], [1, 1], [1, 1])
    worse = gate.decide(parent, outcomes([0, 0], [0, 0], [0, 0], [1, 1]), TASKS, False, 0, expected=[])
    assert worse.verdict == "discard" and "worse" in worse.reason
    assert gate.holds_up(parent, outcomes([0, 0], [1], [1], [1]), TASKS).verdict == "discard"
    assert gate.holds_up(parent, outcomes([1], [1], [1], [1]), TASKS).verdict == "keep"


def test_simplicity_breaks_ties():
    gate = PairedGate()
    same = outcomes([1], [0], [1], [0])
    assert gate.decide(same, same, TASKS, True, 0, expected=[]).verdict == "keep"
    assert gate.decide(same, same, TASKS, False, 0, expected=[]).verdict == "discard"


def test_complexity_counts_tools_components_and_lines():
    base = complexity(HARNESS)
    assert base.tools == 1 and base.components >= 4 and base.lines > 40
    two_tools = HARNESS.replace("TOOLS = [\n", "TOOLS = [\n    {\"type\": \"function\", \"function\": {\"name\": \"x\"}},\n")
    assert complexity(two_tools).tools == 2
    shorter = HARNESS.replace("MODEL_SETTINGS: dict = {}  # passed to the model on every turn, e.g. {\"temperature\": 0}\n", "")
    assert complexity(shorter).simpler_than(base) and not base.simpler_than(complexity(shorter))
    assert make("reference").name == "reference" and make("paired", confidence=0.9).confidence == 0.9
