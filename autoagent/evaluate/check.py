"""`check`: is each task sound? Its reference solution must score 1, doing nothing 0.

A task that fails either way cannot tell a better harness from a worse one: an
unsolvable task only adds noise, and one that passes untouched rewards nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autoagent.evaluate.evaluation import EvalResult, evaluate
from autoagent.evaluate.tasks import discover, select


@dataclass
class Finding:
    name: str
    oracle: float | None = None
    nop: float | None = None
    problems: list[str] = field(default_factory=list)
    oracle_trial_dir: str | None = None
    nop_trial_dir: str | None = None
    warnings: list[str] = field(default_factory=list)  # e.g. the host stood in for the image

    @property
    def sound(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "sound": self.sound}


async def check(
    tasks_dir: Path,
    *,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    limit: int | None = None,
    **options: Any,
) -> list[Finding]:
    """Run Harbor's `oracle` and `nop` agents over every task and judge each task."""
    tasks = select(discover(tasks_dir), include, exclude, limit)
    if not tasks:
        raise ValueError(f"No tasks to check in {tasks_dir} (after filters)")
    on_event = options.pop("on_event", None)
    runs = {}
    for agent in ("oracle", "nop"):  # the progress tells the two apart
        tagged = (lambda event, agent=agent: on_event({**event, "agent": agent})) if on_event else None
        runs[agent] = await evaluate(tasks_dir, agent, tasks=tasks, job_prefix=f"check-{agent}",
                                     on_event=tagged, **options)  # fmt: skip
    oracle, nop = runs["oracle"], runs["nop"]
    return judge(oracle, nop)


def judge(oracle: EvalResult, nop: EvalResult) -> list[Finding]:
    findings = []
    nothing_done = {task.name: task for task in nop.tasks}
    for solved in oracle.tasks:
        idle = nothing_done[solved.name]
        warnings = [w for result in (solved, idle) for t in result.trials for w in t.warnings]
        finding = Finding(
            solved.name, solved.reward, idle.reward, [], solved.trial_dir, idle.trial_dir,
            list(dict.fromkeys(warnings)),
        )
        if solved.error and solved.trials[0].category in ("task", "environment"):
            # Neither agent ran: no score to show, only why (a task Harbor cannot load, a
            # Dockerfile line or a Compose service that fails on this host).
            finding.problems.append(solved.error)
            finding.oracle = finding.nop = None
        else:
            if solved.error:
                finding.problems.append(f"reference solution run failed: {solved.error}")
            elif solved.reward < 1.0:
                finding.problems.append(f"reference solution scores {solved.reward:g}, not 1")
            if idle.error:
                finding.problems.append(f"doing nothing errors: {idle.error}")
            elif idle.reward > 0.0:
                finding.problems.append(f"doing nothing scores {idle.reward:g}, above 0")
        findings.append(finding)
    return findings
