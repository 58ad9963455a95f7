"""The trials of the loop's experiments: each evaluation stage, smoke run and spot check of every
candidate in flight runs here, and waits for a slot of the run's one TrialPool.

`run` runs tasks (task -> attempts) for an experiment and records every trial in it as it
lands; it cuts an evaluation short (`Stop`) on a harness that breaks, a trace that touches the
verifier's files, or a spent budget, and raises `Unmeasured` when most trials were
infrastructure errors. A worker process that dies is replaced once: only a harness that kills
the second one too is to blame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from autoagent import guard, spend, traces
from autoagent.evaluate import EvalResult, evaluate
from autoagent.evaluate.infra import Unmeasured, harness_failure, unmeasured
from autoagent.evaluate.job import JobFailed, Worker
from autoagent.evaluate.pool import TrialPool
from autoagent.evaluate.results import Trial
from autoagent.evaluate.tasks import TaskRef
from autoagent.ledger import Experiment
from autoagent.scoring import rewards_by_task
from autoagent.settings import Settings
from autoagent.strategies.stats import Outcomes
from autoagent.workspace import AGENT_IMPORT_PATH, Workspace


class Stop(Exception):
    """An evaluation cut short: the status to record and why."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


@dataclass
class Trials:
    ws: Workspace
    settings: Settings
    tasks: list[TaskRef]  # every task of the run
    visible: list[str]  # the tasks the meta-agent may see: only they are named in a reason
    pool: TrialPool  # every trial waits for one of its slots; smaller requests are served first
    report: Callable[[str], None]
    on_event: Callable[[dict], None] | None = None  # each trial's start and end, as it happens

    async def run(self, experiment: Experiment, worker: Worker, wanted: dict[str, int],
                  label: str = "eval") -> Outcomes:  # fmt: skip
        """Run tasks (task -> attempts) for an experiment, in `worker` (its harness's process)."""
        first = not experiment.trials
        trials_n, tasks_n = sum(wanted.values()), len(wanted)
        self.report(f"experiment {experiment.id}: {trials_n} trial{'s' * (trials_n != 1)} "
                    f"on {tasks_n} task{'s' * (tasks_n != 1)}")  # fmt: skip
        result = await self.evaluate(experiment, self._refs(wanted), label, worker, wanted)  # one job
        trials = result.trials
        experiment.trials += [{**asdict(t), "label": label} for t in result.trials]  # kept on a stop too
        if result.errors.get("budget"):
            raise Stop("interrupted", "the budget ran out during the evaluation")
        if reason := unmeasured(trials):
            raise Unmeasured(reason)
        if first and experiment.id > 0:
            problem = harness_failure(trials)
            if problem:
                raise Stop("crash", f"the harness broke: {problem}")
        for trial in trials if experiment.id > 0 else []:  # the baseline is the user's own harness
            touched = guard.trace_problem(traces.trajectory(trial.trial_dir))
            if touched:
                seen = trial.task in self.visible  # never name a task the meta-agent may not see
                where = f"on {trial.task} (see {trial.trial_dir})" if seen else "on a held-out task"
                raise Stop("rejected", f"reward hacking: {where} the agent {touched}")
        return rewards_by_task(trials)

    async def evaluate(self, experiment: Experiment, tasks: list[TaskRef], label: str,
                        worker: Worker, attempts: dict[str, int]) -> EvalResult:  # fmt: skip
        """Evaluate in `worker`; if that process dies (killed from outside, or by the harness),
        once more in a new one."""
        options = dict(
            **self.settings.eval_options(), attempts=attempts, jobs_dir=self.ws.jobs_dir,
            job_prefix=f"exp{experiment.id}-{label}", tasks=tasks, cwd=worker.cwd,
            on_event=self.on_event, job_env={spend.EXPERIMENT_ENV: str(experiment.id)},
            configured_model=self.settings.model if experiment.id > 0 else None,
            pool=self.pool, priority=sum(attempts.values()),  # a cheap stage before an expensive one
        )  # fmt: skip
        try:
            result = await evaluate(self.ws.tasks_dir, AGENT_IMPORT_PATH, worker=worker, **options)
        except JobFailed as error:
            self.report(f"experiment {experiment.id}: {str(error).splitlines()[0]}; running it again in a new worker")
            result = await evaluate(self.ws.tasks_dir, AGENT_IMPORT_PATH, **options)
        experiment.job_dirs += result.job_dirs
        experiment.retried += result.retried  # counted apart: no candidate is judged on them
        return result

    async def spot_check(self, experiment_id: int, names: list[str], harness_dir: Path | None = None,
                         ) -> tuple[str, list[Trial]]:  # fmt: skip
        """The harness in `harness_dir` (a candidate's worktree; default the workspace) on a few
        tasks, for the meta-agent: its key and its trials."""
        earlier = self.ws.jobs_dir.glob(f"exp{experiment_id}-spot*.config.json")  # failed proposals' too
        number = sum("-retry" not in job.name for job in earlier) + 1
        self.report(f"experiment {experiment_id}: spot check on {', '.join(names)}")
        result = await evaluate(
            self.ws.tasks_dir, AGENT_IMPORT_PATH, **self.settings.eval_options(), jobs_dir=self.ws.jobs_dir,
            job_prefix=f"exp{experiment_id}-spot{number}", tasks=self._refs(names),
            cwd=harness_dir or self.ws.root, job_env={spend.EXPERIMENT_ENV: str(experiment_id)},
            pool=self.pool, priority=len(names),
        )  # fmt: skip
        return f"spot-{number}", result.trials

    def _refs(self, names) -> list[TaskRef]:
        names = set(names)
        return [t for t in self.tasks if t.name in names]
