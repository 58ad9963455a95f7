"""`autoagent run`: the meta-agent proposes; code validates, evaluates, decides, records, reverts.

    baseline first (experiment 0, the harness as the workspace has it, run twice)
    until a budget is spent or Ctrl-C, with up to K candidates in flight (flight.py):
        parent (strategies/parents.py) -> worktree (worktrees.py) -> brief -> proposal -> commit -> validation
              -> staged evaluation against the parent until the gate decides (strategies/acceptance.py)
              -> keep: the branch moves, if the parent is still the best;
                 else composed onto the best (compose.py) and judged again, as an experiment of its own
              -> ledger

The ledger is written before the workspace is changed, and the workspace is put in order
when a run starts (recovery.py), so a run killed at any point resumes: every committed
candidate is evaluated again, every unfinished proposal is set aside as a patch.
An evaluation that is mostly infrastructure errors measures nothing (evaluate/infra.py):
the baseline is tried again, a candidate is evaluated again later, never judged on it;
failures in a row make the next start wait, and too many stop the run (backoff.py).
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

from autoagent import guard, recovery, spend, worktrees
from autoagent.backoff import Backoff
from autoagent.compose import MOST_COMPOSITIONS, compose
from autoagent.evaluate import effort
from autoagent.evaluate.infra import CANDIDATE_TRIES, MOST_IN_A_ROW, ConfigurationFailed, Unmeasured
from autoagent.evaluate.job import JobFailed, Worker
from autoagent.evaluate.pool import TrialPool
from autoagent.flight import Flight
from autoagent.history import GitError, History
from autoagent.ledger import Experiment, Ledger, now
from autoagent.live import LiveStatus
from autoagent.meta import agent as meta_agent
from autoagent.meta import brief, claude_code
from autoagent.meta.tools import MetaTools
from autoagent.recovery import BranchMoved, recover
from autoagent.scoring import outcomes, score, smoke_task
from autoagent.settings import Settings
from autoagent.splits import choose
from autoagent.strategies import acceptance, cheaper, parents
from autoagent.strategies.gate import complexity
from autoagent.strategies.stats import Outcomes, baseline_note, noise_floor
from autoagent.trials import Stop, Trials
from autoagent.workspace import HARNESS, Workspace

__all__ = ["Loop", "RunError", "Settings"]


class RunError(RuntimeError):
    """The run cannot start or go on; the message says why and what to do."""


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
        self.backoff = Backoff(settings.retry_wait_sec)
        self.parents = parents.make(settings.parents)
        self.in_flight: dict[int, str] = {}  # experiment id -> what it is trying, for the others' briefs
        try:
            self.tasks, self.splits = choose(workspace.ensure_tasks(), settings.include, settings.exclude,
                                             settings.splits)  # fmt: skip
        except ValueError as error:
            raise RunError(f"{workspace.root / 'autoagent.toml'}: {error}") from None
        self.pool = TrialPool(settings.concurrency, settings.start_rate)  # every candidate's trials
        self.trials = Trials(workspace, settings, self.tasks, self.splits.search, self.pool, self.report,
                             self._trial_event)  # fmt: skip
        self.stop_requested = False
        self._started = time.monotonic()
        self._started_at = time.time()
        self._spent_before = self.meter.spent()
        self._candidates = 0  # candidates taken on in this invocation (proposals, and resumed ones)
        self._last_id = 0  # the last experiment id handed out

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
        self.live.in_flight = [line for _, line in sorted(self.in_flight.items())]
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

    async def _run_tasks(self, experiment: Experiment, worker: Worker, wanted: dict[str, int],
                         label: str = "eval") -> Outcomes:  # fmt: skip
        self.update(trials_total=self.live.trials_total + sum(wanted.values()))
        return await self.trials.run(experiment, worker, wanted, label)

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
        except (GitError, ConfigurationFailed, BranchMoved) as error:  # git broken; a model that cannot work
            self.ledger.note("stop", reason=str(error))
            raise RunError(str(error)) from None

    async def _run(self) -> str:
        pending = recover(self.ledger, self.history, self._finish, self.report)
        while not any(e.status == "baseline" for e in self.ledger.experiments()):
            if self.backoff.unmeasured >= MOST_IN_A_ROW:
                return self._stop(f"the baseline could not be measured {self.backoff.unmeasured} times in a row "
                                  "(see the log)")  # fmt: skip
            await self.backoff.wait(lambda: self.update(phase="waiting"))
            try:
                if stopped := await self.baseline():
                    return self._stop(stopped)
            except Unmeasured:
                self.backoff.measured_nothing()
        self.backoff.decided()
        async with Flight(self.settings.candidates) as flight:
            for experiment in pending:  # committed before the last run stopped: judged first
                self.report(f"experiment {experiment.id}: the run stopped during it; evaluating it again")
                self._candidates += 1
                flight.start(self.candidate(experiment))
            while not (reason := self.exhausted() or self.backoff.outage()):
                await flight.room()
                await self.backoff.wait(lambda: self.update(phase="waiting"))
                if reason := self.exhausted() or self.backoff.outage():
                    break
                self._candidates += 1
                flight.start(self.candidate())
            if self.backoff.outage():  # the rest would measure nothing too: they resume next time
                flight.cancel()
        return self._stop(reason)

    async def candidate(self, experiment: Experiment | None = None) -> None:
        """One candidate, from its proposal (or, resumed, from its commit) to its decision, in a
        worktree of its own; a win against a parent that is no longer the best goes on as a
        composition onto the best (compose.py), judged in turn."""
        experiment_id = experiment.id if experiment else self._next_id()
        spend.EXPERIMENT.set(str(experiment_id))  # this task's model calls are this candidate's
        if experiment is None:
            parent = self.parents.choose(self.ledger.experiments(), self.splits.search, self._best(),
                                         random.Random(experiment_id))  # fmt: skip
            tree = worktrees.open_tree(self.history, experiment_id, parent.commit)
        else:
            tree = worktrees.open_tree(self.history, experiment.id, experiment.commit)
        try:
            async with Worker(tree.root, self.settings.model) as worker:
                if experiment is None:
                    await worker.start(self.ws.jobs_dir)  # it warms up while the meta-agent works
                    experiment = await self.propose(experiment_id, parent, tree)
                    if experiment is None:  # recorded; the next start waits (longer each time)
                        self.backoff.proposal_failed()
                        return
                experiment = await self._judged(experiment, tree, worker)
            for _ in range(MOST_COMPOSITIONS):  # the best may move again while a composition is judged
                if experiment is None:
                    return
                worktrees.remove(self.history, tree.root)
                tree = worktrees.open_tree(self.history, experiment.id, experiment.commit)
                async with Worker(tree.root, self.settings.model) as worker:
                    experiment = await self._judged(experiment, tree, worker)
            if experiment is not None:
                self._finish(experiment, "superseded", "the best kept moving while its compositions were judged")
        finally:
            self.in_flight.pop(experiment_id, None)
            recovery.set_aside(tree, self.ws.root / recovery.SET_ASIDE, self.report,
                               f"experiment {experiment_id}'s unfinished proposal")  # fmt: skip
            worktrees.remove(self.history, tree.root)

    async def _judged(self, experiment: Experiment, tree: History, worker: Worker) -> Experiment | None:
        """Judge a committed candidate until something is decided (an evaluation that measured
        nothing is tried again, after a wait); the composition to judge next, if there is one."""
        for tries in range(1, CANDIDATE_TRIES + 1):
            try:
                verdict = await self.judge(experiment, tree, worker if tries == 1 else None)
            except Unmeasured as error:  # recorded; the same candidate is evaluated again after a wait
                self.backoff.measured_nothing()
                if tries == CANDIDATE_TRIES:  # it may be its own doing: set it aside and go on
                    self._finish(experiment, "rejected", f"its evaluation measured nothing {tries} times: "
                                                         f"{error.reason}")  # fmt: skip
                    return None
                await self.backoff.wait(lambda: self.update(phase="waiting"))
                continue
            self.backoff.decided()
            return self._settle(experiment, verdict) if verdict else None
        return None

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
        except Stop as stop:  # the budget ran out: recorded, and the next run starts the baseline again
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

    async def propose(self, experiment_id: int, parent: Experiment, tree: History) -> Experiment | None:
        """Ask the meta-agent for a candidate from `parent`, written in `tree`, and commit it; None
        when it does not deliver."""
        self.update(experiment=experiment_id, trials_done=0, trials_total=0)
        model, api_base = self.settings.meta_endpoint()
        backend = meta_agent if self.settings.meta_backend == "builtin" else claude_code
        who = model if backend is meta_agent else f"Claude Code, {claude_code.model_name(model) or 'its default model'}"
        self.report(f"experiment {experiment_id}: the meta-agent ({who}) is proposing", "proposing")
        tools = MetaTools(
            root=self.ws.root, harness_root=tree.root, ledger=self.ledger, tasks=self.task_names,
            baseline=self._baseline_harness(), tasks_dir=self.ws.tasks_dir,
            off_limits=self.splits.held_out + self.splits.test,
            run_spot_check=lambda tasks: self.trials.spot_check(experiment_id, tasks, tree.root),
        )  # fmt: skip
        best, k = self._best(), self.settings.candidates
        focus = brief.spread(brief.failing(parent, self.task_names), k, experiment_id % k) if k > 1 else None
        others = [line for other, line in sorted(self.in_flight.items()) if other != experiment_id]
        self.in_flight[experiment_id] = f"experiment {experiment_id} (proposing): " + (
            f"works on {', '.join(focus)}" if focus else "works on what its parent fails")
        text = brief.render(
            experiment_id=experiment_id, program=brief.program_text(self.ws.root),
            harness=(tree.root / HARNESS).read_text(), experiments=self.ledger.experiments(),
            best=best, parent=parent if parent.id != best.id else None, visible=self.task_names,
            objective=cheaper.objective(self.settings.gate), focus=focus, others=others if k > 1 else None,
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
        if not tree.harness_changed():
            return self._no_proposal(experiment_id, "it submitted no change", log)
        submission = proposal.submission
        commit = worktrees.commit(
            tree, experiment_id, f"Experiment {experiment_id}: {submission.description}\n\n"
            f"Hypothesis: {submission.hypothesis}\n",
        )  # fmt: skip
        experiment = Experiment(
            experiment_id, "running", commit=commit, parent=parent.commit, parent_id=parent.id,
            description=submission.description, hypothesis=submission.hypothesis,
            expected_flips=submission.expected_flips, overfitting=submission.overfitting,
            meta_log=str(log), timings={"propose": time.monotonic() - started},
        )  # fmt: skip
        self.ledger.save(experiment)
        self.in_flight[experiment_id] = f"experiment {experiment_id} (being evaluated): {submission.description}"
        return experiment

    async def judge(self, experiment: Experiment, tree: History, worker: Worker | None = None) -> str | None:
        """Validate one committed candidate (in its worktree), then evaluate it against its parent
        until the gate decides; the reason to keep it, or None when it was not (recorded)."""
        if worker is None:
            async with Worker(tree.root, self.settings.model) as worker:
                return await self.judge(experiment, tree, worker)
        tree.restore(experiment.commit)  # evaluate exactly what was committed
        parent = next(e for e in self.ledger.experiments() if e.id == experiment.parent_id)
        self.update(experiment=experiment.id, phase="validating", trials_done=0, trials_total=0)
        started = time.monotonic()
        every_task = [t.name for t in self.tasks]  # held-out and test names are off limits too
        problem = guard.harness_problem(tree.root, self._baseline_harness(), every_task)
        experiment.timings["validate"] = time.monotonic() - started
        if problem:
            return self._finish(experiment, "crash", f"invalid harness: {problem}")
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
                simpler=complexity((tree.root / HARNESS).read_text()).simpler_than(
                    complexity(self.history.show(parent.commit, HARNESS))),
                canaries=self.settings.canaries, seed=experiment.id,
                # A held-out loss must be seen more than once to veto: as often as the baseline ran.
                held_out_attempts=max(self.settings.baseline_attempts, self.settings.attempts),
                costs=lambda: effort.paired(parent.trials, experiment.trials, self.settings.cost_measure),
            )  # fmt: skip
        except Stop as stop:
            experiment.timings["evaluate"] = time.monotonic() - started
            experiment.public_reason = stop.reason
            self._score(experiment, parent)
            return self._finish(experiment, stop.status, stop.reason)
        except JobFailed as error:  # the candidate took its worker process down, twice
            experiment.timings["evaluate"] = time.monotonic() - started
            self._score(experiment, parent)
            return self._finish(experiment, "crash", f"the evaluation failed: {error}")
        except Unmeasured as unmeasured:  # an outage judges nothing: the candidate waits its turn
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
        if judgment.status != "keep":
            return self._finish(experiment, judgment.status, judgment.reason)
        return judgment.reason

    def _settle(self, experiment: Experiment, reason: str) -> Experiment | None:
        """A candidate the gate keeps: the branch moves to it when its parent is still the best;
        otherwise its change is composed onto the best, a candidate of its own to judge (returned)."""
        best = self._best()
        if experiment.parent == best.commit:
            self.history.keep(experiment.commit)
            self._finish(experiment, "keep", reason)
            return None
        composition_id = self._next_id()
        composed = compose(self.history, best.commit, experiment.commit, composition_id,
                           f"Experiment {composition_id}: experiment {experiment.id} composed onto experiment "
                           f"{best.id}\n\n{experiment.description}\n")  # fmt: skip
        stale = f"{reason}; but its parent, experiment {experiment.parent_id}, is no longer the best"
        if composed.commit is None:
            self._finish(experiment, "superseded", f"{stale}, and {composed.why_not} (experiment {best.id})")
            return None
        composition = Experiment(
            composition_id, "running", commit=composed.commit, parent=best.commit, parent_id=best.id,
            composed_from=experiment.id, description=f"experiment {experiment.id} on experiment {best.id}: "
            f"{experiment.description}", hypothesis=experiment.hypothesis,
            expected_flips=experiment.expected_flips, overfitting=experiment.overfitting,
        )  # fmt: skip
        self.ledger.save(composition)  # first: a run killed now resumes it, and supersedes the candidate
        self._finish(experiment, "superseded", f"{stale}: composed onto experiment {best.id} as experiment "
                                               f"{composition_id}")  # fmt: skip
        return composition

    # -- bookkeeping -------------------------------------------------------------------

    def _next_id(self) -> int:
        """A new experiment id: past every experiment and failed proposal recorded, and every one
        handed out in flight."""
        failed = [e.get("experiment") for e in self.ledger.events("meta_failure")]
        recorded = max([self.ledger.next_id() - 1, *(i for i in failed if isinstance(i, int))])
        self._last_id = max(self._last_id, recorded) + 1
        return self._last_id

    def _score(self, experiment: Experiment, parent: Experiment | None = None) -> None:
        score(experiment, self.splits, parent, self.settings.cost_measure)

    def _finish(self, experiment: Experiment, status: str, reason: str) -> None:
        experiment.status, experiment.reason, experiment.finished_at = status, reason, now()
        experiment.cost_usd, experiment.cost_unknown = self.meter.by_role(experiment=str(experiment.id))
        self.ledger.save(experiment)
        score = "" if experiment.passed is None else f" · passed {experiment.passed}/{experiment.total}"
        self.report(f"experiment {experiment.id}: {experiment.verdict}{score} · {reason}")

    def _no_proposal(self, experiment_id: int, reason: str, log: Path) -> None:
        """A failed proposal: recorded (and counted as an iteration), never the end of the run."""
        self.ledger.note("meta_failure", experiment=experiment_id, reason=reason, log=str(log))
        self.report(f"experiment {experiment_id}: no proposal from the meta-agent: {reason}")

    def _interrupted(self, reason: str) -> None:
        for experiment in self.ledger.experiments():
            if not experiment.final:
                self._finish(experiment, "interrupted", reason)

    def _stop(self, reason: str) -> str:
        self.ledger.note("stop", reason=reason)
        self._report(self.pool.stats().line())  # how busy the trial slots were
        self.update(phase="stopped", last=f"stopped: {reason}")
        return reason

    def exhausted(self) -> str | None:
        """Why no other candidate should be taken on, or None."""
        reason = self.settings.budget.exhausted(
            iterations=self._candidates,
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
        return self.history.show(baseline.commit, HARNESS)
