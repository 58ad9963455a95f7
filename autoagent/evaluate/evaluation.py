"""`evaluate`: one scored run of an agent over a directory of Harbor tasks.

Broken tasks are reported and counted as errors without stopping the rest; the
job runs in a fresh process under a unique name; trials that fail for
infrastructure reasons are run again (up to `infra_retries` rounds) and counted.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from autoagent.evaluate import job as jobs
from autoagent.evaluate.infra import check_configuration
from autoagent.evaluate.pool import TrialPool
from autoagent.evaluate.precheck import environment_problem
from autoagent.evaluate.results import Trial, read_job
from autoagent.evaluate.tasks import TaskRef, discover, select, with_sandbox_problems


@dataclass
class TaskResult:
    name: str
    trials: list[Trial]

    @property
    def reward(self) -> float:
        return sum(t.reward for t in self.trials) / len(self.trials) if self.trials else 0.0

    @property
    def error(self) -> str | None:
        return next((t.error for t in self.trials if t.error), None)

    @property
    def trial_dir(self) -> str | None:
        return self.trials[0].trial_dir if self.trials else None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reward": self.reward,
            "passed": sum(t.passed for t in self.trials),
            "error": self.error,
            "trial_dir": self.trial_dir,
            "trials": [asdict(t) for t in self.trials],
        }


@dataclass
class EvalResult:
    tasks: list[TaskResult]
    job_dirs: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)  # trial dirs replaced by a retry

    @property
    def trials(self) -> list[Trial]:
        return [trial for task in self.tasks for trial in task.trials]

    @property
    def total(self) -> int:
        return len(self.trials)

    @property
    def passed(self) -> int:
        return sum(trial.passed for trial in self.trials)

    @property
    def score(self) -> float:
        return sum(t.reward for t in self.trials) / self.total if self.total else 0.0

    @property
    def errors(self) -> dict[str, int]:
        return dict(Counter(t.category for t in self.trials if t.category))

    @property
    def cost_usd(self) -> float | None:
        costs = [t.cost_usd for t in self.trials if t.cost_usd is not None]
        return sum(costs) if costs else None

    def to_json(self) -> dict[str, Any]:
        return {
            "score": self.score,
            "passed": self.passed,
            "total": self.total,
            "errors": self.errors,
            "infra_retries": len(self.retried),
            "cost_usd": self.cost_usd,
            "job_dirs": self.job_dirs,
            "retried_trial_dirs": self.retried,
            "tasks": [task.to_json() for task in self.tasks],
        }


async def evaluate(
    tasks_dir: Path,
    agent: str,
    *,
    model: str | None = None,
    agent_kwargs: dict | None = None,
    environment: str = "sandbox",
    environment_kwargs: dict | None = None,
    n_concurrent: int = 4,
    attempts: int | dict[str, int] = 1,
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    limit: int | None = None,
    jobs_dir: Path = Path(".autoagent/jobs"),
    job_prefix: str = "eval",
    infra_retries: int = 2,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    tasks: list[TaskRef] | None = None,
    cwd: Path | None = None,
    worker: jobs.Worker | None = None,
    job_env: dict[str, str] | None = None,
    configured_model: str | None = None,
    pool: TrialPool | None = None,
    priority: int = 0,
) -> EvalResult:
    """Run `agent` on the tasks; every trial is read back from Harbor's own files.

    The jobs run in `worker` (a process for this harness), or in a new one. With `pool`,
    every trial (retries too) waits for one of its slots instead of `n_concurrent`
    bounding this evaluation alone: evaluations running at once share it. A trial whose
    model cannot work as configured stops it (`ConfigurationFailed`); with `configured_model`,
    only a failure of that model does (a candidate's own choice of model is its own failure).
    `attempts` may differ by task ({task: attempts}): the trials still run as one job."""
    chosen = tasks if tasks is not None else select(discover(tasks_dir), include, exclude, limit)
    if not chosen:
        raise ValueError(f"No tasks to run in {tasks_dir} (after filters)")
    wanted = attempts if isinstance(attempts, dict) else {task.name: attempts for task in chosen}
    if environment in ("sandbox", jobs.SANDBOX):
        chosen = with_sandbox_problems(chosen)
    results = {task.name: TaskResult(task.name, []) for task in chosen}
    for task in chosen:
        if not task.valid:
            results[task.name].trials = [
                Trial(task.name, "", "", 0.0, f"invalid task: {task.problem}", "task")
                for _ in range(wanted[task.name])
            ]
    agent_config = jobs.agent_config(agent, model, agent_kwargs)
    environment_config = jobs.environment_config(environment, environment_kwargs)
    runnable = {}
    for task in (task for task in chosen if task.valid):
        problem = environment_problem(task.path, environment_config, agent_config)
        if problem:  # that task's error; the job runs the others
            results[task.name].trials = [
                Trial(task.name, "", "", 0.0, f"EnvironmentRefused: task {task.name}: {problem}", "environment")
                for _ in range(wanted[task.name])
            ]
        else:
            runnable[task.name] = task
    evaluation = EvalResult(tasks=list(results.values()))

    async with _worker_for(worker, cwd, model) as worker:
        # Round 0 runs every attempt; later rounds rerun only infrastructure failures.
        pending = [(name, wanted[name]) for name in runnable]
        for round_number in range(infra_retries + 1):
            if not pending:
                break
            suffix = "" if round_number == 0 else f"-retry{round_number}"
            # A task listed n times gets n trials: retries, and attempts that differ by task.
            listed = round_number > 0 or len({n for _, n in pending}) > 1
            paths = [runnable[name].path for name, n in pending for _ in range(n if listed else 1)]
            n_attempts = 1 if listed else pending[0][1]
            job_dir = await worker.run(
                jobs.job_config(
                    task_paths=paths,
                    agent=agent_config,
                    environment=environment_config,
                    jobs_dir=jobs_dir,
                    job_name=jobs.unique_job_name(job_prefix + suffix),
                    # With a pool, as many trials wait for its slots as it could grant at once.
                    n_concurrent=min(len(paths) * n_attempts, pool.slots) if pool else n_concurrent,
                    n_attempts=n_attempts,
                ),
                on_event,
                job_env,
                pool,
                priority,
            )
            evaluation.job_dirs.append(str(job_dir))
            retry: Counter[str] = Counter()
            for trial in read_job(job_dir):
                last_round = round_number == infra_retries
                if trial.category == "infra" and not last_round:
                    retry[trial.task] += 1
                    evaluation.retried.append(trial.trial_dir)
                else:
                    results[trial.task].trials.append(trial)
            pending = list(retry.items())
    check_configuration(evaluation.trials, configured_model)  # a model that cannot work: stop, judge nothing
    for task in results.values():  # a trial that never wrote a result did not finish
        missing = wanted[task.name] - len(task.trials)
        task.trials += [
            Trial(task.name, "", "", 0.0, "trial did not finish", "cancelled")
            for _ in range(missing)
        ]
    return evaluation


@contextlib.asynccontextmanager
async def _worker_for(worker: jobs.Worker | None, cwd: Path | None, model: str | None):
    """The worker given, or a new one for this evaluation alone."""
    if worker is not None:
        yield worker
        return
    async with jobs.Worker(cwd, model) as own:
        yield own
