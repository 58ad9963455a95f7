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
from autoagent.workspace import AGENT_IMPORT_PATH, Workspace


class AlreadyScored(RuntimeError):
    pass


def records_path(workspace: Workspace) -> Path:
    return workspace.root / ".autoagent" / "test.jsonl"


async def score(workspace: Workspace, test_tasks: list, *, force: bool = False, on_event=None) -> EvalResult:
    commit = History(workspace.root).head()
    earlier = [r for r in jsonl.read(records_path(workspace)) if r["commit"] == commit]
    if earlier and not force:
        first = earlier[0]
        raise AlreadyScored(
            f"This harness ({commit[:7]}) was scored on the test split on {first['time']}: "
            f"{first['passed']}/{first['total']} passed. Scoring it again would make the test split "
            "one more thing to tune against; use --force to do it anyway (it will be recorded)."
        )
    config = workspace.config
    result = await evaluate(
        workspace.tasks_dir, AGENT_IMPORT_PATH, model=config.agent.model,
        agent_kwargs={"api_base": config.agent.api_base} if config.agent.api_base else None,
        environment=config.run.environment, environment_kwargs=config.run.environment_kwargs,
        n_concurrent=config.run.concurrency, attempts=config.run.attempts,
        jobs_dir=workspace.jobs_dir, job_prefix="test", tasks=test_tasks, cwd=workspace.root,
        on_event=on_event,
    )  # fmt: skip
    jsonl.append(records_path(workspace), {
        "commit": commit, "time": now(), "score": result.score, "passed": result.passed,
        "total": result.total, "forced": bool(earlier), "job_dirs": result.job_dirs,
    }, sync=True)  # fmt: skip
    return result
