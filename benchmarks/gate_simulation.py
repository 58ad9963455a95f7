"""The reference rule against the noise-aware gate, on a simulated benchmark with known truth.

    uv run python benchmarks/gate_simulation.py [--tasks 50] [--decisions 400] [--runs 20]

Each task has a true success rate (Bernoulli noise: a third near 0, a third near
1, a third in between). A candidate changes the rates of a few tasks (the ones it
claims to fix), for a true gain of -10, -5, -2, 0, +2, +5 or +10 points. Both
gates judge the same candidates with the same draws (equal seeds), through the
same `strategies.acceptance.judge` the loop uses:

1. keep rates per true gain: false keeps (gain <= 0 kept), true keeps, task runs
   per decision;
2. whole runs: proposals drawn from a realistic mix (most do nothing or harm)
   until a fixed budget of task runs is spent; the true score reached.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
from dataclasses import dataclass

from autoagent.strategies.acceptance import judge
from autoagent.strategies.gate import PairedGate, ReferenceGate
from autoagent.strategies.stats import Outcomes

GAINS = (-10, -5, -2, 0, 2, 5, 10)  # true gain in points (of 100)
MIX = (-10, -5, -2, 0, 0, 0, 0, 2, 5, 10)  # what a meta-agent proposes, roughly


def true_rates(n: int, rng: random.Random) -> dict[str, float]:
    rates = {}
    for i in range(n):
        kind = i % 3
        p = rng.uniform(0.0, 0.05) if kind == 0 else rng.uniform(0.95, 1.0) if kind == 1 else rng.uniform(0.1, 0.9)
        rates[f"task-{i:02d}"] = p
    return rates


def candidate(rates: dict[str, float], gain_points: int, rng: random.Random) -> tuple[dict[str, float], list[str]]:
    """New rates with the given true gain, spread over 1-4 tasks it claims to change."""
    new = dict(rates)
    delta = gain_points / 100 * len(rates)  # in expected tasks
    room = (lambda t: 1 - new[t]) if delta > 0 else (lambda t: new[t])
    tasks = sorted(rates, key=lambda t: -room(t))[: 12]
    rng.shuffle(tasks)
    claimed: list[str] = []
    left = abs(delta)
    for task in tasks:
        if left <= 1e-9 or len(claimed) == 4:
            break
        step = min(room(task), left, rng.uniform(0.5, 1.0))
        new[task] += step if delta > 0 else -step
        left -= step
        claimed.append(task)
    if gain_points == 0:  # it claims fixes that do not come, on tasks that do fail at times
        claimed = rng.sample(sorted(t for t, p in rates.items() if p < 0.95), 2)
    return new, claimed


def draw(rates: dict[str, float], wanted: dict[str, int], rng: random.Random) -> Outcomes:
    return {t: [1.0 if rng.random() < rates[t] else 0.0 for _ in range(n)] for t, n in wanted.items()}


@dataclass
class Tally:
    keeps: int = 0
    decisions: int = 0
    runs: int = 0


async def decide(gate, parent_outcomes: Outcomes, new_rates, claimed, attempts: int, seed: int):
    rng = random.Random(seed)

    async def run(wanted: dict[str, int]) -> Outcomes:
        return draw(new_rates, wanted, rng)

    return await judge(gate=gate, parent=parent_outcomes, run=run, search=sorted(new_rates), held_out=[],
                       expected=claimed, attempts=attempts, simpler=False, seed=seed)  # fmt: skip


async def keep_rates(n: int, decisions: int) -> dict[str, dict[int, Tally]]:
    gates = {"reference": ReferenceGate(), "paired": PairedGate()}
    tallies = {name: {g: Tally() for g in GAINS} for name in gates}
    for d in range(decisions):
        rng = random.Random(d)
        rates = true_rates(n, rng)
        for gain in GAINS:
            new_rates, claimed = candidate(rates, gain, random.Random(d * 100 + gain))
            for name, gate in gates.items():
                # The parent was measured as the loop measures it: the baseline twice.
                parent = draw(rates, {t: 2 for t in rates}, random.Random(d * 7 + 1))
                if name == "reference":  # the reference loop ran its parent once
                    parent = {t: v[:1] for t, v in parent.items()}
                j = await decide(gate, parent, new_rates, claimed, 1, d * 1000 + gain)
                tally = tallies[name][gain]
                tally.keeps += j.status == "keep"
                tally.decisions += 1
                tally.runs += j.runs
    return tallies


async def whole_run(gate, rates: dict[str, float], budget: int, seed: int) -> float:
    """Propose, judge, keep or not, until `budget` task runs are spent; the true score."""
    rng = random.Random(seed)
    first = 2 if gate.staged else 1
    parent = draw(rates, {t: first for t in rates}, rng)
    spent = len(rates) * first
    proposal = 0
    while spent < budget:
        gain = random.Random(seed * 1000 + proposal).choice(MIX)
        new_rates, claimed = candidate(rates, gain, random.Random(seed * 1000 + proposal + 1))
        j = await decide(gate, parent, new_rates, claimed, 1, seed * 1000 + proposal)
        spent += j.runs
        proposal += 1
        if j.status == "keep":
            rates, parent = new_rates, j.outcomes
    return sum(rates.values()) / len(rates)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--decisions", type=int, default=400)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--budget", type=int, default=3000, help="task runs per whole run")
    args = parser.parse_args()
    tallies = await keep_rates(args.tasks, args.decisions)
    print(f"# Gate simulation: {args.tasks} tasks, {args.decisions} candidates per true gain, "
          f"equal seeds for both gates\n")  # fmt: skip
    print("| true gain (points) | reference: kept | paired: kept | reference: task runs per decision | paired: task runs per decision |")
    print("|---|---|---|---|---|")
    for gain in GAINS:
        r, p = tallies["reference"][gain], tallies["paired"][gain]
        print(f"| {gain:+d} | {r.keeps / r.decisions:.1%} | {p.keeps / p.decisions:.1%} | "
              f"{r.runs / r.decisions:.1f} | {p.runs / p.decisions:.1f} |")  # fmt: skip
    for name in ("reference", "paired"):
        t = tallies[name]
        false = sum(t[g].keeps for g in GAINS if g <= 0) / sum(t[g].decisions for g in GAINS if g <= 0)
        runs = sum(t[g].runs for g in GAINS) / sum(t[g].decisions for g in GAINS)
        print(f"\n{name}: false keeps (true gain <= 0) {false:.1%}; +5 kept {t[5].keeps / t[5].decisions:.1%}; "
              f"task runs per decision {runs:.1f} (the full suite once: {args.tasks})")  # fmt: skip
    scores = {name: [] for name in ("reference", "paired")}
    for run in range(args.runs):
        rates = true_rates(args.tasks, random.Random(10_000 + run))
        start = sum(rates.values()) / len(rates)
        for name, gate in (("reference", ReferenceGate()), ("paired", PairedGate())):
            scores[name].append(await whole_run(gate, rates, args.budget, 10_000 + run) - start)
    print(f"\nWhole runs ({args.runs}, {args.budget} task runs each, proposals from {MIX}): "
          "true score gained, mean (min..max):")
    for name, gained in scores.items():
        print(f"- {name}: {100 * statistics.mean(gained):+.1f} points "
              f"({100 * min(gained):+.1f}..{100 * max(gained):+.1f})")


if __name__ == "__main__":
    asyncio.run(main())
