"""When a run starts: make the workspace agree with the ledger, whatever moment the last one died at.

The ledger is written before the workspace is changed, so it is the truth:
- a lock a killed git left in the repository is cleared;
- the branch is put back on the ledger's best (a run killed mid-keep);
- every committed candidate not yet judged is returned, to be evaluated again;
- a candidate whose change was already composed onto the best is recorded as superseded;
- one that never got committed is recorded as interrupted, and whatever its proposal had
  written (in its worktree) is set aside as a patch, never lost silently;
- the harness files the workspace holds are committed on a first run (they are the baseline).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from autoagent import gitops, worktrees
from autoagent.history import History
from autoagent.ledger import Experiment, Ledger

SET_ASIDE = Path(".autoagent") / "set-aside"
Finish = Callable[[Experiment, str, str], None]  # (experiment, status, reason): recorded


class BranchMoved(RuntimeError):
    """Someone moved the branch since the last run: which harness is the best is not ours to guess."""


def recover(ledger: Ledger, history: History, finish: Finish, say: Callable[[str], None]) -> list[Experiment]:
    """Put things in order; return the committed candidates to evaluate again, oldest first."""
    lock = history.root / ".git" / "index.lock"  # a git killed with the last run; else the first keep meets it
    if lock.exists() and gitops.clear_stale_lock(lock, history.root):
        say(f"git: removed {lock}, left behind by a git process that is gone")
    experiments = ledger.experiments()
    best = ledger.best()
    head = history.head()
    if best is not None and best.commit and head != best.commit:
        if head not in {e.commit for e in experiments if not e.final}:
            raise BranchMoved(
                f"The branch moved since the last run: HEAD is {head[:7]}, the ledger's best "
                f"is {best.commit[:7]}. To go on from the best, `git reset --hard "
                f"{best.commit[:7]}`; to start over from HEAD, move .autoagent/runs.jsonl aside."
            )
        history.git("update-ref", "HEAD", best.commit)  # killed mid-keep: the ledger wins
    compositions = {e.composed_from: e for e in experiments if e.composed_from is not None}
    pending = []
    for experiment in experiments:
        if experiment.final or experiment.id == 0:  # a baseline cut short is simply run again
            continue
        if experiment.id in compositions:  # killed between recording its composition and itself
            composition = compositions[experiment.id]
            finish(experiment, "superseded", f"it won against experiment {experiment.parent_id}, no longer the "
                                             f"best; composed onto the best as experiment {composition.id}")  # fmt: skip
        elif experiment.commit and history.candidate(experiment.id):
            experiment.job_dirs, experiment.timings = [], {}
            pending.append(experiment)
        else:
            finish(experiment, "interrupted", "the run stopped before it was committed")
    aside = history.root / SET_ASIDE
    for experiment_id, path in sorted(worktrees.leftovers(history.root).items()):
        set_aside(History(path, say=history.say), aside, say, f"experiment {experiment_id}'s unfinished proposal")
        worktrees.remove(history, path)
    if history.harness_changed():
        if best is None:  # a first run: what the user has in agent.py is the baseline
            history.git("add", "-A", "--", *history.present_harness_files())
            history.git("commit", "-q", "-m", "The harness as autoagent run found it")
        else:  # edited by hand during a run, or left by a version that proposed in place
            set_aside(history, aside, say, "uncommitted changes to the harness")
    return pending


def set_aside(tree: History, into: Path, say: Callable[[str], None], what: str) -> Path | None:
    """Save a tree's uncommitted harness changes as a patch (.autoagent/set-aside/) and undo them."""
    try:
        changed = tree.harness_changed()
    except Exception:  # a worktree too broken to ask: nothing of it can be saved
        return None
    if not changed:
        return None
    patch = tree.set_aside(into)
    say(f"{what} set aside in {patch}")
    return patch
