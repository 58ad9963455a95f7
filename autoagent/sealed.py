"""`autoagent test`: the sealed test split, scored once per harness.

The loop never runs these tasks, so they say how the harness does on work it was
never tuned on. Scoring the same harness twice would turn them into one more
thing to tune against, so a second scoring of a commit is refused unless forced,
and a forced one is recorded as such.
"""

from __future__ import annotations

from pathlib import Path

from autoagent import jsonl
from autoagent.evaluate import EvalResult, evaluate
from autoagent.history import History
from autoagent.ledger import now
from autoagent.loop import Settings
from autoagent.workspace import AGENT_IMPORT_PATH, Workspace


class Refused(RuntimeError):
    """The test split is not scored now; the message says why."""


class AlreadyScored(Refused):
    pass


def records_path(workspace: Workspace) -> Path:
    return workspace.root / ".autoagent" / "test.jsonl"


async def score(workspace: Workspace, test_tasks: list, *, force: bool = False, on_event=None) -> EvalResult:
    history = History(workspace.root)
    if history.harness_changed():  # the score would be filed under a commit it did not test
        raise Refused(
            "agent.py or .agent/ differ from the last commit (a run in progress, or your own edits). "
            "The test split scores committed harnesses only: commit the harness, or wait for the run."
        )
    commit = history.head()
    earlier = [r for r in jsonl.read(records_path(workspace)) if r["commit"] == commit]
    if earlier and not force:
        first = earlier[0]
        raise AlreadyScored(
            f"This harness ({commit[:7]}) was scored on the test split on {first['time']}: "
            f"{first['passed']}/{first['total']} passed. Scoring it again would make the test split "
            "one more thing to tune against; use --force to do it anyway (it will be recorded)."
        )
    settings = Settings.from_workspace(workspace)  # the settings of the loop's own evaluations
    result = await evaluate(
        workspace.tasks_dir, AGENT_IMPORT_PATH, **settings.eval_options(), attempts=settings.attempts,
        jobs_dir=workspace.jobs_dir, job_prefix="test", tasks=test_tasks, cwd=workspace.root,
        on_event=on_event,
    )  # fmt: skip
    jsonl.append(records_path(workspace), {
        "commit": commit, "time": now(), "score": result.score, "passed": result.passed,
        "total": result.total, "forced": bool(earlier), "job_dirs": result.job_dirs,
    }, sync=True)  # fmt: skip
    return result
