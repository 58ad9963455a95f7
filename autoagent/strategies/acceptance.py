"""How a candidate is judged: which tasks it runs, in what order, until a gate decides.

    cheap stage   the tasks it claims to fix (twice each), plus a canary of tasks
                  the parent always passes; if none of its claimed fixes shows up,
                  or it breaks two canaries, it is discarded before the rest
    search stage  the remaining tasks the meta-agent works on
    rounds        while the gate says "more": extra attempts where it is unsure
    held-out      only for a keep: tasks the meta-agent never sees must hold up

`run(tasks, attempts)` does the evaluating: real trials in the loop, Bernoulli
draws in benchmarks/gate_simulation.py. A gate that is not `staged` (the reference
rule) gets one pass over everything instead.
"""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from autoagent.strategies.cheaper import Costs
from autoagent.strategies.gate import Gate
from autoagent.strategies.stats import Outcomes, mean

Run = Callable[[dict[str, int]], Awaitable[Outcomes]]  # {task: attempts} -> outcomes


@dataclass
class Judgment:
    status: str  # keep | discard | indecisive
    reason: str
    outcomes: Outcomes = field(default_factory=dict)
    runs: int = 0  # trials run for this decision
    saved: int = 0  # trials a full evaluation would have run on top
    stage: str = ""  # where it was decided: cheap, search, held-out
    basis: str = ""  # what a keep rests on: the score (""), "cheaper" or "simpler"

    def visible_reason(self) -> str:
        """What the meta-agent may learn: nothing about tasks it cannot see."""
        if self.stage == "held-out":
            return "discarded: it did not hold up on tasks kept out of your sight"
        return self.reason


async def judge(
    *,
    gate: Gate,
    parent: Outcomes,
    run: Run,
    search: list[str],
    held_out: list[str],
    expected: list[str],
    attempts: int,
    simpler: bool,
    canaries: int = 5,
    held_out_attempts: int | None = None,  # default: `attempts`
    seed: int = 0,
    costs: Callable[[], Costs] | None = None,  # the cost measure, parent's and candidate's costs now
) -> Judgment:
    held_out_attempts = held_out_attempts or attempts
    full = len(search) * attempts + len(held_out) * held_out_attempts
    outcomes: Outcomes = {}
    runs = 0

    async def evaluate(wanted: dict[str, int]) -> None:
        nonlocal runs
        if not wanted:
            return
        for task, rewards in (await run(wanted)).items():
            outcomes.setdefault(task, []).extend(rewards)
        runs += sum(wanted.values())

    def done(status: str, reason: str, stage: str, basis: str = "") -> Judgment:
        return Judgment(status, reason, outcomes, runs, max(0, full - runs), stage, basis)

    def decide(round: int):
        return gate.decide(parent, outcomes, search, simpler, round, expected, costs=costs() if costs else None)

    if not gate.staged:  # one evaluation of everything, then the rule
        await evaluate({t: attempts for t in search} | {t: held_out_attempts for t in held_out})
        decision = decide(0)
        if decision.verdict == "keep" and held_out:
            veto = gate.holds_up(parent, outcomes, held_out)
            if veto.verdict != "keep":
                return done("discard", veto.reason, "held-out")
        return done(decision.verdict, decision.reason, "search", decision.basis)

    claimed = [t for t in expected if t in search]
    first = cheap_stage(parent, search, claimed, canaries, seed)
    await evaluate({t: attempts * (2 if t in claimed else 1) for t in first})
    worse = clearly_worse(parent, outcomes, first, claimed)
    if worse:
        return done("discard", worse, "cheap")
    await evaluate({t: attempts for t in search if t not in first})
    for round in range(gate.max_rounds + 1):
        decision = decide(round)
        if decision.verdict != "more":
            break
        await evaluate(decision.more)
    if decision.verdict != "keep" or not held_out:
        return done(decision.verdict, decision.reason, "search", decision.basis)
    await evaluate({t: held_out_attempts for t in held_out})
    veto = gate.holds_up(parent, outcomes, held_out)
    if veto.verdict != "keep":
        return done("discard", veto.reason, "held-out")
    return done("keep", f"{decision.reason}; {veto.reason}", "search", decision.basis)


def cheap_stage(parent: Outcomes, search: list[str], claimed: list[str], canaries: int, seed: int) -> list[str]:
    """The tasks it claims to fix, and a few the parent never failed (a fresh pick each time)."""
    reliable = sorted(t for t in search if parent.get(t) and mean(parent[t]) >= 1.0 and t not in claimed)
    return claimed + random.Random(seed).sample(reliable, min(canaries, len(reliable)))


def clearly_worse(parent: Outcomes, candidate: Outcomes, tasks: list[str], claimed: list[str]) -> str | None:
    """None of its claimed fixes came; or, with no claim borne out, it broke two tasks
    the parent never failed."""
    if claimed and sum(mean(candidate[t]) - mean(parent.get(t, [0.0])) for t in claimed) <= 0:
        return f"none of the {len(claimed)} fixes it claimed showed up"
    broken = [t for t in tasks if t not in claimed and mean(parent.get(t, [0.0])) >= 1.0
              and candidate.get(t) and mean(candidate[t]) == 0.0]  # fmt: skip
    if len(broken) >= 2 and not claimed:
        return f"it failed {len(broken)} of the tasks its parent never failed"
    return None
