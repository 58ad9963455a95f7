"""A git worktree per candidate: where its proposal is written and its evaluation imports it from.

    .autoagent/worktrees/<experiment id>/    agent.py and .agent/, as the candidate has them

Each candidate starts from its own parent's commit, so several proposals can be written
and evaluated at once without touching each other, and the workspace's own harness files
stay as the branch (the best) has them. Only the harness files are checked out: every
other file of the commit is marked skip-worktree, so a tree holds no copy of a task (a
held-out one least of all) for a meta-agent to read around its rules.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from autoagent.history import HARNESS_FILES, History

WORKTREES = Path(".autoagent") / "worktrees"


def directory(root: Path, experiment_id: int) -> Path:
    return root / WORKTREES / str(experiment_id)


def open_tree(history: History, experiment_id: int, commit: str) -> History:
    """A fresh worktree for experiment `experiment_id` at `commit`; its History."""
    path = directory(history.root, experiment_id)
    if path.exists() or history.git("worktree", "list", "--porcelain").count(f"worktree {path}\n"):
        remove(history, path)
    path.parent.mkdir(parents=True, exist_ok=True)
    history.git("worktree", "add", "-q", "--no-checkout", "--detach", str(path), commit)
    tree = History(path, say=history.say)
    tree.git("read-tree", "HEAD")  # the index as the commit has it; no file written yet
    others = [p for p in tree.git("ls-files", "-z", raw=True).split("\0") if p and not _harness(p)]
    if others:
        tree.git("update-index", "--skip-worktree", "-z", "--stdin", input="\0".join(others) + "\0")
    present = [p for p in HARNESS_FILES if tree.git("ls-tree", "HEAD", "--", p)]
    if present:
        tree.git("checkout", "HEAD", "--", *present)
    return tree


def commit(tree: History, experiment_id: int, message: str) -> str:
    """Commit the tree's harness files as the candidate (its ref) and stand the tree on it: what
    is left uncommitted in a tree is only ever an unfinished proposal."""
    commit = tree.commit_candidate(experiment_id, message)
    tree.git("update-ref", "--no-deref", "HEAD", commit)
    return commit


def remove(history: History, path: Path) -> None:
    """Remove a candidate's worktree (its changes, if any, set aside first by the caller)."""
    history.git("worktree", "remove", "--force", str(path), check=False)
    if path.exists():
        shutil.rmtree(path, ignore_errors=True)
    history.git("worktree", "prune", check=False)


def leftovers(root: Path) -> dict[int, Path]:
    """Worktrees left by a run that was killed: experiment id -> directory."""
    base = root / WORKTREES
    found = base.iterdir() if base.is_dir() else []
    return {int(p.name): p for p in found if p.name.isdigit()}


def _harness(path: str) -> bool:
    return any(path == name or path.startswith(f"{name}/") for name in HARNESS_FILES)
