"""Gates: does a candidate harness replace its parent?

A gate sees the two evaluations and the two harnesses and returns a `Decision`.
The reference rule (the published autoagent's) is the default: keep if more tasks
pass; keep if as many pass and the harness is simpler; otherwise discard. Errors
count as failures, because they are: a trial that errored passed nothing.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Protocol

from autoagent.guard import editable_part


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


@dataclass(frozen=True)
class Evaluation:
    passed: int
    total: int
    score: float
    harness: str


@dataclass(frozen=True)
class Decision:
    keep: bool
    reason: str


class Gate(Protocol):
    name: str

    def decide(self, parent: Evaluation, candidate: Evaluation) -> Decision: ...


class ReferenceGate:
    """Keep if `passed` rose; or held and the harness got simpler. Otherwise discard."""

    name = "reference"

    def decide(self, parent: Evaluation, candidate: Evaluation) -> Decision:
        before, after = f"{parent.passed}/{parent.total}", f"{candidate.passed}/{candidate.total}"
        if candidate.passed > parent.passed:
            return Decision(True, f"passed rose from {before} to {after}")
        if candidate.passed == parent.passed:
            old, new = complexity(parent.harness), complexity(candidate.harness)
            if new.simpler_than(old):
                return Decision(True, f"passed held at {after} with a simpler harness "
                                      f"({new.lines} lines of code, was {old.lines})")  # fmt: skip
            return Decision(False, f"passed held at {after} and the harness is not simpler")
        return Decision(False, f"passed fell from {before} to {after}")


GATES: dict[str, type] = {"reference": ReferenceGate}
