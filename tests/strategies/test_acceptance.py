"""The staged protocol with a fake runner: what runs, in what order, and when it stops."""

import asyncio

from autoagent.strategies.acceptance import judge
from autoagent.strategies.gate import PairedGate, ReferenceGate

SEARCH = [f"s{i}" for i in range(10)]
HELD = ["h0", "h1"]


def runner(results: dict[str, float], log: list):
    async def run(wanted):
        log.append(dict(wanted))
        return {t: [results[t]] * n for t, n in wanted.items()}
    return run


def parent():
    passes = {f"s{i}": 1.0 for i in range(8)} | {"s8": 0.0, "s9": 0.0, "h0": 1.0, "h1": 1.0}
    return {t: [v, v] for t, v in passes.items()}


def run_judge(gate, results, expected, log):
    return asyncio.run(judge(gate=gate, parent=parent(), run=runner(results, log), search=SEARCH,
                             held_out=HELD, expected=expected, attempts=1, simpler=False))  # fmt: skip


def test_claims_that_do_not_show_stop_before_the_full_run():
    log: list = []
    results = {t: v[0] for t, v in parent().items()}  # changes nothing
    judgment = run_judge(PairedGate(), results, ["s8"], log)
    assert judgment.status == "discard" and judgment.stage == "cheap"
    assert "none of the 1 fixes it claimed showed up" in judgment.reason
    assert len(log) == 1 and log[0]["s8"] == 2 and len(log[0]) == 6  # the claim twice, 5 canaries
    assert judgment.runs == 7 and judgment.saved == 12 - 7


def test_a_real_fix_is_kept_after_held_out_holds():
    log: list = []
    results = {t: v[0] for t, v in parent().items()} | {"s8": 1.0, "s9": 1.0}
    judgment = run_judge(PairedGate(), results, ["s8", "s9"], log)
    assert judgment.status == "keep", judgment.reason
    assert set(log[-1]) == set(HELD)  # held-out last, only for a keep


def test_a_fix_that_breaks_held_out_is_discarded_without_naming_it():
    log: list = []
    results = {t: v[0] for t, v in parent().items()} | {"s8": 1.0, "s9": 1.0, "h0": 0.0, "h1": 0.0}
    judgment = run_judge(PairedGate(), results, ["s8", "s9"], log)
    assert (judgment.status, judgment.stage) == ("discard", "held-out")
    assert "h0" not in judgment.visible_reason() and "held" not in judgment.visible_reason().split(":")[0]


def test_the_reference_rule_runs_everything_once():
    log: list = []
    results = {t: v[0] for t, v in parent().items()} | {"s8": 1.0}
    judgment = run_judge(ReferenceGate(), results, [], log)
    assert judgment.status == "keep" and len(log) == 1 and len(log[0]) == 12
