"""Running git so that a night survives its faults: a failed command is tried again, and a
lock left behind by a git that was killed (`.git/index.lock`, a ref's `.lock`) is cleared
when no git process is at work in the repository, and said so."""

from __future__ import annotations

import os
import re
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

ATTEMPTS = 4
WAIT_SEC = 0.5  # doubles after each failure
STALE_LOCK = re.compile(r"Unable to create '([^']+\.lock)': File exists")
# Answers, not faults: asking again gives the same answer.
NOT_FOUND = re.compile(r"unknown revision|bad revision|bad object|[Nn]ot a valid object name|invalid object name|does not exist in|"
                       r"exists on disk, but not in|did not match any file")  # fmt: skip


def run(root: Path, args: list[str], *, input: str | None = None,
        say: Callable[[str], None] | None = None, retry: bool = True) -> subprocess.CompletedProcess:  # fmt: skip
    """`git *args` in `root`; a failure is tried again (after clearing a stale lock) before
    it is returned."""
    for attempt in range(ATTEMPTS if retry else 1):
        completed = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, input=input)
        if completed.returncode == 0 or attempt == ATTEMPTS - 1 or not retry or NOT_FOUND.search(completed.stderr):
            return completed
        lock = STALE_LOCK.search(completed.stderr)
        if lock and clear_stale_lock(Path(lock.group(1)), root) and say is not None:
            say(f"git: removed {lock.group(1)}, left behind by a git process that is gone")
        else:
            time.sleep(WAIT_SEC * 2**attempt)
    return completed


def clear_stale_lock(lock: Path, root: Path) -> bool:
    """Remove `lock` if no git process works in the repository (in `root`, or in the workspace
    whose .git holds the lock: a candidate's worktree shares its refs); whether it was removed."""
    top = next((p.parent for p in lock.parents if p.name == ".git"), root)
    if git_running(root) or git_running(top):
        return False
    try:
        lock.unlink()
    except FileNotFoundError:
        return False  # gone already: its owner finished
    return True


def git_running(root: Path) -> bool:
    """Is a git process (other than ours, which have exited) working in `root`?"""
    root = root.resolve()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if (entry / "comm").read_text().strip() != "git":
                continue
            cwd = Path(os.readlink(entry / "cwd"))
        except OSError:  # it exited, or is not ours to see
            continue
        if cwd == root or root in cwd.parents:
            return True
    return False
