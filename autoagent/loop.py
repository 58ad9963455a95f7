"""`autoagent run`: the meta-agent proposes; code validates, evaluates, decides, records, reverts.

    baseline first (experiment 0, the harness as the workspace has it, run twice)
    until a budget is spent or Ctrl-C:
        brief -> proposal -> commit -> validation
              -> staged evaluation until the gate decides (strategies/acceptance.py)
              -> keep (move the branch) or revert -> ledger

The ledger is written before the workspace is changed, and the workspace is put
back in order when a run starts (`recover`), so a run killed at any point resumes:
a committed candidate is evaluated again, an unfinished proposal is set aside as a patch.
An evaluation that is mostly infrastructure errors measures nothing (evaluate/infra.py):
the baseline is tried again, a candidate is evaluated again later, never judged on it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autoagent import guard, spend, traces
from autoagent.evaluate import effort
from autoagent.evaluate import EvalResult, evaluate
from autoagent.evaluate.job import JobFailed, Worker
from autoagent.evaluate.results import Trial
from autoagent.evaluate.tasks import TaskRef
from autoagent.evaluate.infra import CANDIDATE_TRIES, MOST_IN_A_ROW, ConfigurationFailed, Unmeasured, harness_failure, outage, unmeasured
from autoagent.history import GitError, History
from autoagent.ledger import Experiment, Ledger, now
from autoagent.live import LiveStatus
from autoagent.meta import agent as meta_agent
from autoagent.meta import brief, claude_code
from autoagent.meta.tools import MetaTools
from autoagent.scoring import outcomes, rewards_by_task, score, smoke_task
from autoagent.splits import choose
from autoagent.strategies import acceptance, cheaper
from autoagent.strategies import gate as gates
from autoagent.strategies.budget import Budget
from autoagent.strategies.gate import Gate, complexity
from autoagent.strategies.stats import Outcomes, baseline_note, noise_floor
from autoagent.workspace import AGENT_IMPORT_PATH, Workspace


class RunError(RuntimeError):
    """The run cannot start or go on; the message says why and what to do."""


@dataclass
class Settings:
    model: str
    api_base: str | None = None
    meta_model: str | None = None
    meta_api_base: str | None = None
    environment: str = "sandbox"
    environment_kwargs: dict = field(default_factory=dict)
    concurrency: int = 4
    candidates: int = 1  # candidates in flight at once (issue 13; this loop still judges one at a time)
    attempts: int = 1
    include: list[str] | None = None
    exclude: list[str] | None = None
    budget: Budget = field(default_factory=Budget)
    gate: Gate = field(default_factory=gates.PairedGate)
    canaries: int = 5
    baseline_attempts: int = 2  # the baseline runs more than once: the noise floor
    splits: dict = field(default_factory=dict)  # held_out, test, fractions, seed
    limits: meta_agent.Limits = field(default_factory=meta_agent.Limits)
    meta_backend: str = "builtin"  # or "claude-code"
    retry_wait_sec: float = 30.0  # after a failed proposal; doubles up to 10 minutes
    cost_measure: str = "auto"  # compared at equal score (effort.py), when the gate is score-then-cost

    def eval_options(self) -> dict:
        """How every evaluation of the harness runs: its model and endpoint, where, how wide."""
        return dict(
            model=self.model, agent_kwargs={"api_base": self.api_base} if self.api_base else None,
            environment=self.environment, environment_kwargs=self.environment_kwargs,
            n_concurrent=self.concurrency,
        )  # fmt: skip

    def meta_endpoint(self) -> tuple[str, str | None]:
        """The meta-agent's model and endpoint: its own if set, else the task agent's (the same
        model on both sides works best, the reference system's finding), endpoint and all."""
        if self.meta_model:
            return self.meta_model, self.meta_api_base
        return self.model, self.meta_api_base or self.api_base

    @classmethod
    def from_workspace(cls, workspace: Workspace, **overrides) -> Settings:
        config = workspace.config
        values = dict(
            model=config.agent.model, api_base=config.agent.api_base,
            meta_model=config.meta.model, meta_api_base=config.meta.api_base,
            environment=config.run.environment, environment_kwargs=config.run.environment_kwargs,
            concurrency=config.run.concurrency, attempts=config.run.attempts,
            include=config.tasks.include or None, exclude=config.tasks.exclude or None,
            budget=Budget(config.budget.iterations, config.budget.hours, config.budget.usd),
            limits=meta_agent.Limits(config.meta.max_turns, config.meta.max_minutes * 60, config.meta.max_usd,
                                     config.meta.timeout_sec),
            gate=cheaper.with_objective(gates.make(config.decision.gate, confidence=config.decision.confidence,
                                                   max_rounds=config.decision.max_rounds), config.decision.objective),
            cost_measure=config.decision.cost_measure,
            canaries=config.decision.canaries, baseline_attempts=config.decision.baseline_attempts,
            splits=config.splits.model_dump(), meta_backend=config.meta.backend,
        )  # fmt: skip
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


class Loop:
    def __init__(self, workspace: Workspace, settings: Settings, report: Callable[[str], None] = print,
                 on_status: Callable[[LiveStatus], None] | None = None):  # fmt: skip
        self.ws = workspace
        self.settings = settings
        self._report = report
        self._on_status = on_status
        budget = settings.budget
        self.live = LiveStatus(budget={"iterations": budget.iterations, "hours": budget.hours, "usd": budget.usd})
        self.ledger = Ledger(workspace.root)
        self.history = History(workspace.root, say=lambda line: self.report(line))
        self.meter = spend.Meter(workspace.root / ".autoagent" / "spend.jsonl")
        try:
            self.tasks, self.splits = choose(workspace.ensure_tasks(), settings.include, settings.exclude,
                                             settings.splits)  # fmt: skip
        except ValueError as error:
            raise RunError(f"{workspace.root / 'autoagent.toml'}: {error}") from None
        self.stop_requested = False
        self._started = time.monotonic()
        self._started_at = time.time()
        self._spent_before = self.meter.spent()
        self._done = 0  # proposals made (or failed) in this invocation

    def report(self, line: str, phase: str | None = None) -> None:
        """A line for the log; the live status follows it."""
        self.live.last = line
        self.update(phase=phase or self.live.phase)
        self._report(line)

    def update(self, **fields) -> None:
        """Change the live status (`.autoagent/live.json`, the live display)."""
        for name, value in fields.items():
            setattr(self.live, name, value)
        best = self.ledger.best()
        if best is not None:
            self.live.best = {"id": best.id, "passed": best.passed, "total": best.total}
        self.live.spend, self.live.spend_unknown = self.meter.by_role(since=self._started_at)  # this invocation
        self.live.save(self.ws.root)
        if self._on_status is not None:
            self._on_status(self.live)

    def _trial_event(self, event: dict) -> None:
        if event.get("event") == "end":
            self.update(trials_done=self.live.trials_done + 1)

    @property
    def task_names(self) -> list[str]:
        """The tasks the meta-agent may see: the search split."""
        return self.splits.search

    def _refs(self, names) -> list[TaskRef]:
        names = set(names)
        return [t for t in self.tasks if t.name in names]

    # -- the algorithm ------------------------------------------------------------

    async def run(self) -> str:
        """Run until a budget is spent or a stop is requested; returns why it stopped."""
        if not self.tasks:
            raise RunError(f"No tasks in {self.ws.tasks_dir} after the include/exclude filters")
        self._point_processes_at_the_meter()
        try:
            return await self._run()
        except asyncio.CancelledError:
            if not self.stop_requested:
                raise
            self._interrupted("stopped by the user (Ctrl-C)")
            return self._stop("stopped by the user")
        except (GitError, ConfigurationFailed) as error:  # git broken past its retries; a model that cannot work
            self.ledger.note("stop", reason=str(error))
            raise RunError(str(error)) from None

    async def _run(self) -> str:
        pending = self.recover()
        failures = 0  # in a row: unmeasured baselines, then failed proposals and unmeasured evaluations
        while not any(e.status == "baseline" for e in self.ledger.experiments()):
            if failures >= MOST_IN_A_ROW:
                return self._stop(f"the baseline could not be measured {failures} times in a row (see the log)")
            await self._wait(failures)
            try:
                stopped = await self.baseline()
            except Unmeasured:
                failures += 1
                continue
            if stopped:
                return self._stop(stopped)
        if pending is not None:
            self.report(f"experiment {pending.id}: the run stopped during it; evaluating it again")
        failures = unmeasured = tries = 0  # tries: unmeasured evaluations of the pending candidate
        while not (reason := self.exhausted() or outage(unmeasured)):
            await self._wait(failures)
            try:
                if pending is not None:  # a candidate committed but not judged yet
                    await self.judge(pending)
                else:
                    async with Worker(self.ws.root, self.settings.model) as worker:
                        await worker.start(self.ws.jobs_dir)  # it warms up while the meta-agent works
                        if (pending := await self.propose()) is not None:
                            await self.judge(pending, worker)
                    if pending is None:  # recorded; wait (longer each time) and ask again
                        failures += 1
                        continue
            except Unmeasured as error:  # recorded; the same candidate is evaluated again after a wait
                failures, unmeasured, tries = failures + 1, unmeasured + 1, tries + 1
                if tries >= CANDIDATE_TRIES:  # it may be its own doing: set it aside and go on
                    self._reject(pending, "rejected", f"its evaluation measured nothing {tries} times: {error.reason}")
                    pending, tries = None, 0
                continue
            pending, failures, unmeasured, tries = None, 0, 0, 0
        return self._stop(reason)

    async def baseline(self) -> str | None:
        """Evaluate the harness as it is (experiment 0); why it stopped short, if it did."""
        self.update(experiment=0)
        self.report("experiment 0: the baseline, the harness as the workspace has it", "evaluating")
        problem = guard.import_problem(self.ws.harness)
        if problem:
            raise RunError(f"The baseline harness cannot run: {problem}")
        experiment = Experiment(0, "running", commit=self.history.head(), description="baseline")
        self.ledger.save(experiment)
        started = time.monotonic()
        attempts = max(self.settings.baseline_attempts, self.settings.attempts)
        try:
            async with Worker(self.ws.root, self.settings.model) as worker:
                await self._run_tasks(experiment, worker, {t: attempts for t in self.splits.search + self.splits.held_out})
        except _Stop as stop:  # the budget ran out: recorded, and the next run starts the baseline again
            self._score(experiment)
            self._finish(experiment, "interrupted", stop.reason)
            return stop.reason
        except (Unmeasured, JobFailed) as error:  # an outage is no starting point: recorded, tried again
            why = error.reason if isinstance(error, Unmeasured) else f"its worker process died twice: {error}"
            self._finish(experiment, "interrupted", f"not a starting point: {why}")
            raise Unmeasured(why) from None
        experiment.timings["evaluate"] = time.monotonic() - started
        self._score(experiment)
        floor = noise_floor(outcomes(experiment), self.splits.search) if attempts > 1 else None
        experiment.noise_floor = floor
        self._finish(experiment, "baseline", baseline_note(floor))

    async def propose(self) -> Experiment | None:
        """Ask the meta-agent for a candidate and commit it; None when it does not deliver."""
        best = self._best()
        experiment_id = self.ledger.next_id()
        os.environ[spend.EXPERIMENT_ENV] = str(experiment_id)
        self.update(experiment=experiment_id, trials_done=0, trials_total=0)
        model, api_base = self.settings.meta_endpoint()
        backend = meta_agent if self.settings.meta_backend == "builtin" else claude_code
        who = model if backend is meta_agent else f"Claude Code, {claude_code.model_name(model) or 'its default model'}"
        self.report(f"experiment {experiment_id}: the meta-agent ({who}) is proposing", "proposing")
        tools = MetaTools(
            root=self.ws.root, ledger=self.ledger, tasks=self.task_names,
            baseline=self._baseline_harness(), tasks_dir=self.ws.tasks_dir,
            off_limits=self.splits.held_out + self.splits.test,
            run_spot_check=lambda tasks: self.spot_check(experiment_id, tasks),
        )  # fmt: skip
        text = brief.render(
            experiment_id=experiment_id, program=brief.program_text(self.ws.root),
            harness=self.ws.harness.read_text(), experiments=self.ledger.experiments(),
            best=best, visible=self.task_names, objective=cheaper.objective(self.settings.gate),
        )  # fmt: skip
        started = time.monotonic()
        log = self.ws.root / ".autoagent" / "meta" / f"{experiment_id}-{int(time.time())}.json"
        try:
            proposal = await backend.propose(
                tools, text, model=model,
                api_base=api_base, limits=self.settings.limits, log=log,
            )  # fmt: skip
        except meta_agent.MetaAgentError as error:
            return self._no_proposal(experiment_id, str(error), log)
        if not self.history.harness_changed():
            return self._no_proposal(experiment_id, "it submitted no change", log)
        submission = proposal.submission
        commit = self.history.commit_candidate(
            experiment_id, f"Experiment {experiment_id}: {submission.description}\n\n"
            f"Hypothesis: {submission.hypothesis}\n",
        )  # fmt: skip
        experiment = Experiment(
            experiment_id, "running", commit=commit, parent=best.commit, parent_id=best.id,
            description=submission.description, hypothesis=submission.hypothesis,
            expected_flips=submission.expected_flips, overfitting=submission.overfitting,
            meta_log=str(log), timings={"propose": time.monotonic() - started},
        )  # fmt: skip
        self.ledger.save(experiment)
        return experiment

    async def judge(self, experiment: Experiment, worker: Worker | None = None) -> None:
        """Validate one committed candidate, then evaluate it until the gate decides."""
        if worker is None:
            async with Worker(self.ws.root, self.settings.model) as worker:
                return await self.judge(experiment, worker)
        self.history.restore(experiment.commit)  # evaluate exactly what was committed
        parent = next(e for e in self.ledger.experiments() if e.id == experiment.parent_id)
        self.update(experiment=experiment.id, phase="validating", trials_done=0, trials_total=0)
        started = time.monotonic()
        every_task = [t.name for t in self.tasks]  # held-out and test names are off limits too
        problem = guard.harness_problem(self.ws.root, self._baseline_harness(), every_task)
        experiment.timings["validate"] = time.monotonic() - started
        if problem:
            return self._reject(experiment, "crash", f"invalid harness: {problem}")
        gate = self.settings.gate
        started = time.monotonic()
        try:
            if not gate.staged:  # the reference rule runs everything at once: smoke-test it first
                await self._run_tasks(experiment, worker, {smoke_task(parent, self.splits.search): 1}, label="smoke")
            self.report(f"experiment {experiment.id}: evaluating ({gate.name} gate)", "evaluating")
            judgment = await acceptance.judge(
                gate=gate, parent=outcomes(parent),
                run=lambda wanted: self._run_tasks(experiment, worker, wanted),
                search=self.splits.search, held_out=self.splits.held_out,
                expected=experiment.expected_flips, attempts=self.settings.attempts,
                simpler=complexity(self.ws.harness.read_text()).simpler_than(
                    complexity(self.history.show(parent.commit, "agent.py"))),
                canaries=self.settings.canaries, seed=experiment.id,
                # A held-out loss must be seen more than once to veto: as often as the baseline ran.
                held_out_attempts=max(self.settings.baseline_attempts, self.settings.attempts),
                costs=lambda: effort.paired(parent.trials, experiment.trials, self.settings.cost_measure),
            )  # fmt: skip
        except _Stop as stop:
            experiment.timings["evaluate"] = time.monotonic() - started
            experiment.public_reason = stop.reason
            self._score(experiment, parent)
            return self._reject(experiment, stop.status, stop.reason)
        except JobFailed as error:  # the candidate took its worker process down, twice
            experiment.timings["evaluate"] = time.monotonic() - started
            self._score(experiment, parent)
            return self._reject(experiment, "crash", f"the evaluation failed: {error}")
        except Unmeasured as unmeasured:  # an outage judges nothing: the candidate waits its turn
            self.history.restore()
            experiment.trials, experiment.job_dirs, experiment.timings = [], [], {}
            experiment.reason = f"to be evaluated again: {unmeasured.reason}"
            self.ledger.save(experiment)
            self.report(f"experiment {experiment.id}: not judged, {unmeasured.reason}; it is evaluated again later")
            raise
        experiment.timings["evaluate"] = time.monotonic() - started
        experiment.runs, experiment.saved, experiment.kept_as = judgment.runs, judgment.saved, judgment.basis
        experiment.public_reason = judgment.visible_reason()
        self._score(experiment, parent)
        if judgment.saved:
            judgment.reason += f" ({judgment.runs} trials run, {judgment.saved} saved)"
        if judgment.status == "keep":
            self.history.keep(experiment.commit)
            self._finish(experiment, "keep", judgment.reason)
        else:
            self._reject(experiment, judgment.status, judgment.reason)

    # -- evaluation -----------------------------------------------------------------

    async def _run_tasks(self, experiment: Experiment, worker: Worker, wanted: dict[str, int],
                   label: str = "eval") -> Outcomes:  # fmt: skip
        """Run tasks (task -> attempts) for an experiment; record the trials; stop early on a
        harness that breaks, a trace that touches the verifier's files, or a spent budget."""
        first = not experiment.trials
        trials: list[Trial] = []
        trials_n, tasks_n = sum(wanted.values()), len(wanted)
        self.live.trials_total += trials_n
        self.report(f"experiment {experiment.id}: {trials_n} trial{'s' * (trials_n != 1)} "
                    f"on {tasks_n} task{'s' * (tasks_n != 1)}")  # fmt: skip
        for attempts in sorted(set(wanted.values())):
            names = [t for t, n in wanted.items() if n == attempts]
            result = await self.evaluate(experiment, self._refs(names), label, worker, attempts)
            trials += result.trials
            experiment.trials += [{**asdict(t), "label": label} for t in result.trials]  # kept on a stop too
            if result.errors.get("budget"):
                raise _Stop("interrupted", "the budget ran out during the evaluation")
        if reason := unmeasured(trials):
            raise Unmeasured(reason)
        if first and experiment.id > 0:
            problem = harness_failure(trials)
            if problem:
                raise _Stop("crash", f"the harness broke: {problem}")
        for trial in trials if experiment.id > 0 else []:  # the baseline is the user's own harness
            touched = guard.trace_problem(traces.trajectory(trial.trial_dir))
            if touched:
                seen = trial.task in self.splits.search  # never name a task the meta-agent may not see
                where = f"on {trial.task} (see {trial.trial_dir})" if seen else "on a held-out task"
                raise _Stop("rejected", f"reward hacking: {where} the agent {touched}")
        return rewards_by_task(trials)

    async def evaluate(self, experiment: Experiment, tasks: list[TaskRef], label: str,
                       worker: Worker, attempts: int) -> EvalResult:  # fmt: skip
        """Evaluate in `worker`; if that process dies (killed from outside, or by the harness),
        once more in a new one: only a harness that kills that one too is to blame."""
        options = dict(
            **self.settings.eval_options(), attempts=attempts, jobs_dir=self.ws.jobs_dir,
            job_prefix=f"exp{experiment.id}-{label}", tasks=tasks, cwd=self.ws.root,
            on_event=self._trial_event, job_env={spend.EXPERIMENT_ENV: str(experiment.id)},
            configured_model=self.settings.model if experiment.id > 0 else None,
        )  # fmt: skip
        try:
            result = await evaluate(self.ws.tasks_dir, AGENT_IMPORT_PATH, worker=worker, **options)
        except JobFailed as error:
            self.report(f"experiment {experiment.id}: {str(error).splitlines()[0]}; running it again in a new worker")
            result = await evaluate(self.ws.tasks_dir, AGENT_IMPORT_PATH, **options)
        experiment.job_dirs += result.job_dirs
        return result

    async def spot_check(self, experiment_id: int, names: list[str]) -> tuple[str, list[Trial]]:
        earlier = self.ws.jobs_dir.glob(f"exp{experiment_id}-spot*.config.json")  # failed proposals' too
        number = sum("-retry" not in job.name for job in earlier) + 1
        self.report(f"experiment {experiment_id}: spot check on {', '.join(names)}")
        result = await evaluate(
            self.ws.tasks_dir, AGENT_IMPORT_PATH, **self.settings.eval_options(), jobs_dir=self.ws.jobs_dir,
            job_prefix=f"exp{experiment_id}-spot{number}", tasks=self._refs(names), cwd=self.ws.root,
            job_env={spend.EXPERIMENT_ENV: str(experiment_id)},
        )  # fmt: skip
        return f"spot-{number}", result.trials

    # -- bookkeeping -------------------------------------------------------------------

    def _score(self, experiment: Experiment, parent: Experiment | None = None) -> None:
        score(experiment, self.splits, parent, self.settings.cost_measure)

    def _finish(self, experiment: Experiment, status: str, reason: str) -> None:
        experiment.status, experiment.reason, experiment.finished_at = status, reason, now()
        experiment.cost_usd, experiment.cost_unknown = self.meter.by_role(experiment=str(experiment.id))
        self.ledger.save(experiment)
        self._done += experiment.id > 0
        score = "" if experiment.passed is None else f" · passed {experiment.passed}/{experiment.total}"
        self.report(f"experiment {experiment.id}: {experiment.verdict}{score} · {reason}")

    def _no_proposal(self, experiment_id: int, reason: str, log: Path) -> None:
        """A failed proposal: recorded (and counted as an iteration), never the end of the run."""
        self.history.restore()
        self.ledger.note("meta_failure", experiment=experiment_id, reason=reason, log=str(log))
        self._done += 1
        self.report(f"experiment {experiment_id}: no proposal from the meta-agent: {reason}")

    def _reject(self, experiment: Experiment, status: str, reason: str) -> None:
        self.history.restore()  # the best harness, as the branch has it
        self._finish(experiment, status, reason)

    def _interrupted(self, reason: str) -> None:
        running = [e for e in self.ledger.experiments() if not e.final]
        for experiment in running:
            self._reject(experiment, "interrupted", reason)
        if not running:  # stopped during a proposal: its edit is set aside, not lost
            self._set_aside()

    def _set_aside(self) -> None:
        if self.history.harness_changed():
            patch = self.history.set_aside(self.ws.root / ".autoagent" / "set-aside")
            self.report(f"uncommitted changes to the harness were set aside in {patch}")

    def _stop(self, reason: str) -> str:
        self.ledger.note("stop", reason=reason)
        self.update(phase="stopped", last=f"stopped: {reason}")
        return reason

    async def _wait(self, failures: int) -> None:
        """After `failures` in a row, wait longer each time (up to 10 minutes)."""
        if failures:
            self.update(phase="waiting")
            await asyncio.sleep(min(600.0, self.settings.retry_wait_sec * 2 ** (failures - 1)))

    def recover(self) -> Experiment | None:
        """Make the workspace agree with the ledger; return a committed candidate to redo."""
        best = self.ledger.best()
        head = self.history.head()
        if best is not None and best.commit and head != best.commit:
            unfinished = {e.commit for e in self.ledger.experiments() if not e.final}
            if head not in unfinished:
                raise RunError(
                    f"The branch moved since the last run: HEAD is {head[:7]}, the ledger's best "
                    f"is {best.commit[:7]}. To go on from the best, `git reset --hard "
                    f"{best.commit[:7]}`; to start over from HEAD, move .autoagent/runs.jsonl aside."
                )
            self.history.git("update-ref", "HEAD", best.commit)  # killed mid-keep: the ledger wins
        pending = None
        for experiment in self.ledger.experiments():
            if experiment.final:
                continue
            if experiment.id == 0:
                continue  # a baseline cut short is simply run again
            if experiment.commit and self.history.candidate(experiment.id):
                experiment.job_dirs, experiment.timings = [], {}
                pending = experiment
            else:
                self._reject(experiment, "interrupted", "the run stopped before it was committed")
        if pending is None and self.history.harness_changed():
            if best is None:  # a first run: what the user has in agent.py is the baseline
                self.history.git("add", "-A", "--", *self.history.present_harness_files())
                self.history.git("commit", "-q", "-m", "The harness as autoagent run found it")
            else:  # an unfinished proposal: set it aside, never lose it silently
                self._set_aside()
        return pending

    def exhausted(self) -> str | None:
        reason = self.settings.budget.exhausted(
            iterations=self._done,
            hours=(time.monotonic() - self._started) / 3600,
            usd=self.meter.spent() - self._spent_before,
        )
        if reason is None and self.meter.refusals(since=self._started_at):
            spent = self.meter.spent() - self._spent_before
            reason = f"${spent:.4f} spent; the next model call would cross --budget-usd {self.settings.budget.usd:g}"
        return reason

    def _point_processes_at_the_meter(self) -> None:
        """Every process this run starts records its model calls in one meter."""
        os.environ[spend.FILE_ENV] = str(self.meter.path)
        os.environ[spend.ROLE_ENV] = "task"
        if self.settings.budget.usd is not None:
            os.environ[spend.BUDGET_ENV] = str(self._spent_before + self.settings.budget.usd)
        else:
            os.environ.pop(spend.BUDGET_ENV, None)  # not an earlier run's, in the same process

    def _best(self) -> Experiment:
        best = self.ledger.best()
        if best is None:
            raise RunError("The ledger has no baseline")
        return best

    def _baseline_harness(self) -> str:
        baseline = next(e for e in self.ledger.experiments() if e.status == "baseline")
        return self.history.show(baseline.commit, "agent.py")


class _Stop(Exception):
    """An evaluation cut short: the status to record and why."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason
