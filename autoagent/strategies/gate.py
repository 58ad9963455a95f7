"""Gates: does a candidate harness replace its parent?

A gate compares per-task outcomes (the reward of every attempt) on the tasks the
meta-agent works on, and answers keep, discard, indecisive, or "more": which tasks
need more attempts before it can tell. `holds_up` then vetoes a keep that does not
hold on the held-out tasks. Errors count as failures: a trial that errored passed
nothing.

- `reference`: the published autoagent's rule. Keep if `passed` rose, or held with
  a simpler harness. One evaluation decides, so luck decides often.
- `paired` (default): a paired permutation test per task at a stated confidence;
  an indecisive candidate gets more attempts on the tasks where it differs, up to
  `max_rounds`; the simplicity tiebreak remains.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from typing import Protocol

from autoagent.guard import editable_part
from autoagent.strategies.stats import Outcomes, compare, mean


@dataclass(frozen=True)
class Complexity:
    tools: int  # entries of TOOLS
    components: int  # top-level functions and classes
    lines: int  # lines of code, without blanks and comments

    def simpler_than(self, other: Complexity) -> bool:
        mine, theirs = (self.tools, self.components, self.lines), (other.tools, other.components, other.lines)
        return all(a <= b for a, b in zip(mine, theirs)) and mine != theirs


def complexity(harness: str) -> Complexity:
    """How much machinery the editable part of a harness holds."""
    code = editable_part(harness)
    lines = sum(1 for line in code.splitlines() if line.strip() and not line.strip().startswith("#"))
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return Complexity(0, 0, lines)
    components = sum(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) for n in tree.body)
    tools = 0
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if any(isinstance(t, ast.Name) and t.id == "TOOLS" for t in targets) and isinstance(node.value, ast.List):
            tools = len(node.value.elts)
    return Complexity(tools, components, lines)


def passed(outcomes: Outcomes, tasks: list[str]) -> float:
    """Tasks passed, counting a task passed in half its attempts as half."""
    return sum(mean([1.0 if r >= 1.0 else 0.0 for r in outcomes[t]]) for t in tasks if outcomes.get(t))


@dataclass(frozen=True)
class Decision:
    verdict: str  # keep | discard | indecisive | more
    reason: str
    more: dict[str, int] = field(default_factory=dict)  # task -> extra attempts wanted
    basis: str = ""  # what a keep rests on: the score (""), "cheaper" or "simpler"


class Gate(Protocol):
    name: str
    staged: bool  # evaluate in stages (cheap first, more attempts where unsure)?

    def decide(self, parent: Outcomes, candidate: Outcomes, tasks: list[str], simpler: bool,
               round: int, expected: list[str], costs=None) -> Decision: ...  # fmt: skip

    def holds_up(self, parent: Outcomes, candidate: Outcomes, tasks: list[str]) -> Decision: ...


class ReferenceGate:
    """Keep if `passed` rose; or held and the harness got simpler. Otherwise discard."""

    name = "reference"
    staged = False

    def decide(self, parent: Outcomes, candidate: Outcomes, tasks: list[str], simpler: bool,
               round: int = 0, expected: list[str] | None = None, costs=None) -> Decision:  # fmt: skip
        before, after = passed(parent, tasks), passed(candidate, tasks)
        if after > before:
            return Decision("keep", f"passed rose from {before:g} to {after:g} of {len(tasks)}")
        if after == before:
            if simpler:
                return Decision("keep", f"passed held at {after:g} of {len(tasks)} with a simpler harness", basis="simpler")
            return Decision("discard", f"passed held at {after:g} of {len(tasks)} and the harness is not simpler")
        return Decision("discard", f"passed fell from {before:g} to {after:g} of {len(tasks)}")

    def holds_up(self, parent: Outcomes, candidate: Outcomes, tasks: list[str]) -> Decision:
        before, after = passed(parent, tasks), passed(candidate, tasks)
        if after < before:
            return Decision("discard", f"it lost on the held-out tasks ({after:g} passed, was {before:g})")
        return Decision("keep", "it held on the held-out tasks")


@dataclass
class PairedGate:
    """A candidate is kept when its gain is unlikely to be luck.

    Two ways to show it, each at half the error budget: on the tasks it claimed to
    fix (few tasks, little noise: a pre-registered hypothesis), provided the other
    tasks are not clearly worse and the total gain is positive; or on all tasks.
    Each look at the data spends part of the budget (Bonferroni over rounds).
    """

    confidence: float = 0.95
    max_rounds: int = 3  # rounds of extra attempts for an indecisive candidate
    claimed_attempts: int = 2  # extra attempts per round on a claimed task
    held_out_tolerance: float = 0.25  # a held-out loss this likely to be chance still vetoes
    collateral_tolerance: float = 0.25  # so does a loss on the tasks it did not claim
    name: str = "paired"
    staged: bool = True

    def decide(self, parent: Outcomes, candidate: Outcomes, tasks: list[str], simpler: bool,
               round: int = 0, expected: list[str] | None = None, costs=None) -> Decision:  # fmt: skip
        alpha = (1 - self.confidence) / 2
        claimed = [t for t in expected or [] if t in tasks]
        rest = [t for t in tasks if t not in claimed]
        everything = compare(parent, candidate, tasks)
        summary = f"gain {everything.gain:+.2f} tasks over {everything.tasks}"
        on_claims = compare(parent, candidate, claimed) if claimed else None
        if on_claims and on_claims.gain > 0 and on_claims.p_better <= alpha:
            others = compare(parent, candidate, rest)
            if not (others.gain < 0 and others.p_worse <= self.collateral_tolerance):
                return Decision("keep", f"{summary}; on the {len(claimed)} tasks it claimed "
                                        f"{on_claims.gain:+.2f}, p={on_claims.p_better:.4f} that it is luck")  # fmt: skip
        if everything.gain > 0 and everything.p_better <= alpha:
            return Decision("keep", f"{summary}, p={everything.p_better:.4f} that it is luck")
        if everything.gain < 0 and everything.p_worse <= 1 - self.confidence:
            return Decision("discard", f"{summary}: worse (p={everything.p_worse:.3f} that it is luck)")
        if round < self.max_rounds:
            more = {}
            if on_claims and on_claims.gain > 0:
                more = {t: self.claimed_attempts for t in claimed if _differs(parent, candidate, t)}
            elif everything.gain > 0:  # the claims did not carry it: look wider
                more = {t: 1 for t in tasks if _differs(parent, candidate, t)}
            if more:
                return Decision("more", f"{summary}: not yet clear", more)
        if everything.gain >= 0 and simpler:
            return Decision("keep", f"{summary}: as good, and the harness is simpler", basis="simpler")
        if everything.gain > 0:
            return Decision("indecisive", f"{summary}: could be luck after {round} extra rounds")
        return Decision("discard", f"{summary}: not better")

    def holds_up(self, parent: Outcomes, candidate: Outcomes, tasks: list[str]) -> Decision:
        c = compare(parent, candidate, tasks)
        if c.gain < 0 and c.p_worse <= self.held_out_tolerance:
            return Decision("discard", f"it lost {-c.gain:.2f} tasks on the held-out tasks "
                                       f"(p={c.p_worse:.3f} that it is luck)")  # fmt: skip
        return Decision("keep", "it held on the held-out tasks")


def _differs(parent: Outcomes, candidate: Outcomes, task: str) -> bool:
    """Worth another attempt: the two disagree on it, or the candidate disagrees with itself."""
    if not candidate.get(task) or not parent.get(task):
        return False
    return mean(candidate[task]) != mean(parent[task]) or len(set(candidate[task])) > 1


def make(name: str, **options) -> Gate:
    gates = {"paired": PairedGate, "reference": ReferenceGate}
    if name not in gates:
        raise ValueError(f"unknown gate {name!r}; choose one of {', '.join(gates)}")
    return gates[name](**options) if name == "paired" else gates[name]()
