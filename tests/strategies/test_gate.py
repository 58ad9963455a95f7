from autoagent.strategies.gate import Evaluation, ReferenceGate, complexity
from autoagent.workspace import TEMPLATES

HARNESS = (TEMPLATES / "agent.py").read_text()
gate = ReferenceGate()


def test_more_passed_is_kept():
    decision = gate.decide(Evaluation(2, 3, 0.66, HARNESS), Evaluation(3, 3, 1.0, HARNESS))
    assert decision.keep and decision.reason == "passed rose from 2/3 to 3/3"


def test_equal_and_not_simpler_is_discarded_fewer_is_discarded():
    longer = HARNESS.replace("MAX_TURNS = 30", "MAX_TURNS = 30\nRETRIES = 2")
    assert not gate.decide(Evaluation(2, 3, 0.66, HARNESS), Evaluation(2, 3, 0.7, longer)).keep
    assert not gate.decide(Evaluation(2, 3, 0.66, HARNESS), Evaluation(1, 3, 0.3, HARNESS)).keep
    # A higher average score with the same number passed does not count (errors are failures).
    assert not gate.decide(Evaluation(2, 3, 0.66, HARNESS), Evaluation(2, 3, 0.9, HARNESS)).keep


def test_equal_and_simpler_is_kept():
    simpler = HARNESS.replace("MODEL_SETTINGS: dict = {}  # passed to the model on every turn, e.g. {\"temperature\": 0}\n", "")
    simpler = simpler.replace("**MODEL_SETTINGS", "")
    assert complexity(simpler).simpler_than(complexity(HARNESS))
    decision = gate.decide(Evaluation(2, 3, 0.6, HARNESS), Evaluation(2, 3, 0.6, simpler))
    assert decision.keep and "simpler" in decision.reason


def test_complexity_counts_tools_components_and_lines():
    base = complexity(HARNESS)
    assert base.tools == 1 and base.components >= 4 and base.lines > 40
    two_tools = HARNESS.replace("TOOLS = [\n", "TOOLS = [\n    {\"type\": \"function\", \"function\": {\"name\": \"x\"}},\n")
    assert complexity(two_tools).tools == 2
