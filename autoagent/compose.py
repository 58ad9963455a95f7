"""Composition: a candidate that won against a parent that is no longer the best, merged onto the best.

Gains verified one by one need not add up, so a merged harness is a candidate of its
own: the loop judges it against the best before the branch moves. The merge is git's
three-way merge against the two commits' merge base (`git merge-tree --write-tree`, no
checkout), so a candidate drawn from an older harness brings along what that harness had.
A conflict composes nothing: the caller records the candidate as superseded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autoagent import gitops
from autoagent.history import CANDIDATES, GitError, History

MOST_COMPOSITIONS = 3  # for one candidate: the best moved again each time one was judged


@dataclass
class Composition:
    commit: str | None  # None: nothing to judge (a conflict, or its change is in the best already)
    conflicts: list[str] = field(default_factory=list)  # the files both changed differently

    @property
    def why_not(self) -> str:
        if self.conflicts:
            return f"its change conflicts with the best's in {', '.join(self.conflicts)}"
        return "the best already has its change"


def compose(history: History, best: str, candidate: str, experiment_id: int, message: str) -> Composition:
    """Merge `candidate` onto `best`; the merge commit (both as parents) under the new experiment's ref."""
    merged = gitops.run(history.root, ["merge-tree", "--write-tree", "--name-only", "--no-messages", best, candidate],
                        say=history.say, retry=False)  # fmt: skip
    lines = merged.stdout.splitlines()
    if merged.returncode == 1:
        return Composition(None, sorted(set(filter(None, lines[1:]))))
    if merged.returncode != 0 or not lines:
        raise GitError(f"git merge-tree {best[:7]} {candidate[:7]} failed in {history.root}: "
                       f"{' '.join(merged.stderr.split())}")  # fmt: skip
    tree = lines[0]
    if tree == history.git("rev-parse", f"{best}^{{tree}}"):
        return Composition(None)
    commit = history.git("commit-tree", tree, "-p", best, "-p", candidate, input=message)
    history.git("update-ref", f"{CANDIDATES}/{experiment_id}", commit)
    return Composition(commit)
