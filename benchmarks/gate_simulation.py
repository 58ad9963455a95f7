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
   until a fixed budget of task runs is spent; the true score reached;
3. cost (the objective score-then-cost, strategies/cheaper.py): each task also has
   a true cost per attempt (spread over two orders of magnitude between tasks, and
   lognormal noise between attempts, sigma --cost-noise); candidates change the cost
   by -30% .. +30% at equal score, or save 30% and lose 2 or 5 points of score. A
   false keep is any keep of a candidate that is not truly cheaper or that loses score.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import random
import statistics
from dataclasses import dataclass

from autoagent.strategies.acceptance import judge
from autoagent.strategies.cheaper import ScoreThenCost
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
    any_keeps: int = 0  # cost: kept for any reason (a score keep, too)
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


COST_CHANGES = (-30, -20, -10, 0, 10, 20, 30)  # true change of the cost, percent, at equal score
TRADES = (-2, -5, -10)  # candidates that save 30% and lose this many points (as the score part's)


def true_costs(rates: dict[str, float], rng: random.Random) -> dict[str, float]:
    return {t: math.exp(rng.uniform(math.log(0.1), math.log(10))) for t in rates}


def draw_costs(costs: dict[str, float], wanted: dict[str, int], noise: float, rng: random.Random) -> Outcomes:
    return {t: [costs[t] * math.exp(rng.gauss(-noise**2 / 2, noise)) for _ in range(n)] for t, n in wanted.items()}


async def decide_with_cost(gate, rates, costs, new_rates, new_costs, claimed, noise: float, seed: int,
                           parent_attempts: int = 2):  # fmt: skip
    rng = random.Random(seed)
    parent = draw(rates, {t: parent_attempts for t in rates}, random.Random(seed + 1))
    parent_cost = draw_costs(costs, {t: parent_attempts for t in rates}, noise, random.Random(seed + 2))
    candidate_cost: Outcomes = {}

    async def run(wanted: dict[str, int]) -> Outcomes:
        for task, values in draw_costs(new_costs, wanted, noise, rng).items():
            candidate_cost.setdefault(task, []).extend(values)
        return draw(new_rates, wanted, rng)

    return await judge(gate=gate, parent=parent, run=run, search=sorted(rates), held_out=[], expected=claimed,
                       attempts=1, simpler=False, seed=seed,
                       costs=lambda: ("tokens", parent_cost, candidate_cost))  # fmt: skip


async def cost_rates(n: int, decisions: int, noise: float, saturated: bool = False,
                     parent_attempts: int = 2) -> dict[str, Tally]:  # fmt: skip
    """Keep rates of the score-then-cost gate, by kind of candidate (on a suite the parent
    passes almost always, when `saturated`)."""
    gate = ScoreThenCost(PairedGate(), permutations=1000)
    kinds = [f"cost {c:+d}%" for c in COST_CHANGES] + [f"score {g:+d}, cost -30%" for g in TRADES]
    tallies = {kind: Tally() for kind in kinds}
    for d in range(decisions):
        rng = random.Random(50_000 + d)
        rates = true_rates(n, rng)
        if saturated:
            rates = {t: rng.uniform(0.95, 1.0) for t in rates}
        costs = true_costs(rates, rng)
        for kind in kinds:
            if kind.startswith("cost"):
                change = int(kind.split()[1].rstrip("%"))
                new_rates, claimed = rates, []
            else:
                change = -30
                new_rates, _ = candidate(rates, int(kind.split()[1].rstrip(",")), random.Random(d * 31 + len(kind)))
                claimed = []  # a saving claims no fixes
            new_costs = {t: c * (1 + change / 100) for t, c in costs.items()}
            j = await decide_with_cost(gate, rates, costs, new_rates, new_costs, claimed, noise, 60_000 + d * 100,
                                       parent_attempts)  # fmt: skip
            tally = tallies[kind]
            tally.keeps += j.status == "keep" and j.basis == "cheaper"
            tally.any_keeps += j.status == "keep"
            tally.decisions += 1
            tally.runs += j.runs
    return tallies


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", type=int, default=50)
    parser.add_argument("--decisions", type=int, default=400)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--budget", type=int, default=3000, help="task runs per whole run")
    parser.add_argument("--cost-decisions", type=int, default=200, help="candidates per kind, for cost")
    parser.add_argument("--cost-noise", type=float, default=0.3, help="sigma of the log cost between attempts")
    parser.add_argument("--only-cost", action="store_true", help="run the cost part alone")
    parser.add_argument("--parent-attempts", type=int, default=2, help="cost: the parent's attempts per task")
    args = parser.parse_args()
    if not args.only_cost:
        await score_part(args)
    for saturated in (False, True):
        tallies = await cost_rates(args.tasks, args.cost_decisions, args.cost_noise, saturated, args.parent_attempts)
        suite = "a saturated suite (every task passed 95-100% of the time)" if saturated else "the suite above"
        print(f"\n## Cost: score-then-cost on {suite}, {args.tasks} tasks, {args.cost_decisions} candidates "
              f"per kind, cost noise sigma {args.cost_noise} between attempts\n")
        print("| candidate (true change) | kept as cheaper | kept for any reason | task runs per decision |")
        print("|---|---|---|---|")
        for kind, t in tallies.items():
            print(f"| {kind} | {t.keeps / t.decisions:.1%} | {t.any_keeps / t.decisions:.1%} | "
                  f"{t.runs / t.decisions:.1f} |")
        false = [t for kind, t in tallies.items() if not kind.startswith("cost -")]
        cheaper = [tallies["cost -20%"], tallies["cost -30%"]]
        rate = lambda ts: sum(t.keeps for t in ts) / sum(t.decisions for t in ts)  # noqa: E731
        print(f"\n{'saturated ' if saturated else ''}cost: false keeps {rate(false):.1%}, "
              f"20%-cheaper kept {rate(cheaper):.1%}")


async def score_part(args) -> None:
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
