"""Git as the run's memory: every candidate a commit under its own ref; the branch, the best.

A candidate is committed on top of the best harness without moving the branch
(refs/autoagent/candidates/<id>), so its diff and lineage stay reachable whatever
the decision. Keeping it moves the branch there; discarding it puts the harness
files back as the best commit has them. Only the harness files are touched:
a human may edit program.md or anything else while a run goes on.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from autoagent import gitops

HARNESS_FILES = ("agent.py", ".agent")
CANDIDATES = "refs/autoagent/candidates"


class GitError(RuntimeError):
    pass


@dataclass
class History:
    root: Path

    say: Callable[[str], None] | None = None  # where a cleared lock is reported

    def git(self, *args: str, check: bool = True, input: str | None = None, raw: bool = False) -> str:
        """Run git; when `check`, a failure is retried (see gitops) before it raises GitError."""
        completed = gitops.run(
            self.root, ["-c", "user.name=AutoAgent", "-c", "user.email=autoagent@localhost", *args],
            input=input, say=self.say, retry=check,
        )  # fmt: skip
        if check and completed.returncode != 0:
            raise GitError(f"git {' '.join(args)} failed in {self.root} and kept failing: "
                           f"{' '.join(completed.stderr.split())} Repair the repository, then run "
                           "again: the ledger is intact and the run resumes.")  # fmt: skip
        return completed.stdout if raw else completed.stdout.strip()

    def head(self) -> str:
        return self.git("rev-parse", "HEAD")

    def present_harness_files(self) -> list[str]:
        return [p for p in HARNESS_FILES if (self.root / p).exists()]

    def commit_candidate(self, experiment_id: int, message: str) -> str:
        """Commit the harness files as they are now, on top of HEAD, under the candidate's ref."""
        self.git("add", "-A", "--", *self.present_harness_files())
        tree = self.git("write-tree")
        commit = self.git("commit-tree", tree, "-p", "HEAD", input=message)
        self.git("update-ref", f"{CANDIDATES}/{experiment_id}", commit)
        return commit

    def candidate(self, experiment_id: int) -> str | None:
        return self.git("rev-parse", "--verify", "-q", f"{CANDIDATES}/{experiment_id}", check=False) or None

    def keep(self, commit: str) -> None:
        """Move the branch to `commit` and make the harness files match it."""
        self.git("update-ref", "HEAD", commit)
        self.restore(commit)

    def restore(self, commit: str | None = None) -> None:
        """Put the harness files (tree and index) back as `commit` (default HEAD) has them."""
        commit = commit or "HEAD"
        tracked = [p for p in HARNESS_FILES if self.git("ls-tree", commit, "--", p)]
        self.git("reset", "-q", commit, "--", *HARNESS_FILES)
        if tracked:
            self.git("checkout", commit, "--", *tracked)
        self.git("clean", "-fdq", "--", *HARNESS_FILES)

    def harness_changed(self) -> bool:
        """Do the harness files differ from HEAD (edited, added or removed)?"""
        return bool(self.git("status", "--porcelain", "--untracked-files=all", "--", *HARNESS_FILES))

    def set_aside(self, directory: Path) -> Path:
        """Save the uncommitted harness changes as a patch, then restore HEAD's harness."""
        self.git("add", "-A", "--", *self.present_harness_files())
        directory.mkdir(parents=True, exist_ok=True)
        patch = directory / f"{int(time.time())}.patch"
        for number in range(2, 1000):  # several set aside in one second (candidates in flight)
            if not patch.exists():
                break
            patch = directory / f"{int(time.time())}-{number}.patch"
        patch.write_text(self.git("diff", "--cached", "HEAD", "--", *HARNESS_FILES, raw=True))
        self.restore()
        return patch

    def show(self, commit: str, path: str) -> str:
        return self.git("show", f"{commit}:{path}", raw=True)

    def diff(self, old: str, new: str) -> str:
        return self.git("diff", old, new, "--", *HARNESS_FILES, raw=True)
