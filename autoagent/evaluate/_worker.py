"""A process that runs Harbor jobs: `python -m autoagent.evaluate._worker`.

Harbor imports an agent's module once per process, so each harness gets a worker
of its own: a new process sees the `agent.py` of the moment. One worker may run
several jobs of the same harness in a row (a smoke run, then the evaluation,
then retries), which saves a process start (and LiteLLM's import) per job.

It reads one request per line on stdin ({"config": path, "env": {...}}) and runs
the jobs in turn; trial events and a `job-done` record per job go to
AUTOAGENT_EVENTS_FD as JSON lines.

A request with "gated": true runs its trials only as the parent's trial pool allows
(pool.py): each trial, before its environment starts, asks for a slot (`slot-wanted`)
and waits for a `{"grant": trial}` line on stdin; it gives the slot back (`slot-free`)
when it has ended, or when it is cancelled while still waiting. So stdin is read while a
job runs: jobs run in a task of their own, one after another.
"""

import asyncio
import ctypes
import json
import os
import signal
import sys
import traceback
from pathlib import Path

from harbor.job import Job
from harbor.models.job.config import JobConfig
from harbor.trial.hooks import TrialHookEvent

from autoagent.harness_box import pool


def die_with_parent() -> None:
    """If the process that started us is killed, stop too (our sandboxes follow)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before we got here
        sys.exit(1)


class Slots:
    """The trials of this process that wait for a slot of the parent's pool."""

    def __init__(self, events) -> None:
        self.events = events
        self.waiting: dict[str, asyncio.Future] = {}

    async def wanted(self, event: TrialHookEvent) -> None:
        """Harbor's START hook: wait for the parent's grant."""
        future = asyncio.get_running_loop().create_future()
        self.waiting[event.trial_name] = future
        self._say("slot-wanted", event.trial_name)
        try:
            await future
        except asyncio.CancelledError:  # Harbor emits no END for a trial cancelled here
            self._say("slot-free", event.trial_name)
            raise
        finally:
            self.waiting.pop(event.trial_name, None)

    async def ended(self, event: TrialHookEvent) -> None:
        """Harbor's END hook (after a cancel too): the slot goes back."""
        self._say("slot-free", event.trial_name)

    def granted(self, trial: str) -> None:
        future = self.waiting.get(trial)
        if future is None or future.done():  # nobody waits for it any more: give it back
            self._say("slot-free", trial)
        else:
            future.set_result(None)

    def _say(self, what: str, trial: str) -> None:
        self.events.write(json.dumps({"event": what, "trial": trial}) + "\n")


async def run(config_path: str, events, slots: Slots | None = None) -> None:
    config = JobConfig.model_validate_json(Path(config_path).read_text())

    async def emit(event: TrialHookEvent) -> None:
        record = {"event": event.event.value, "trial": event.trial_name, "task": event.task_name}
        if event.event.value == "end":
            record["trial_dir"] = str(Path(config.jobs_dir) / config.job_name / event.trial_name)
            rewards = (event.result.verifier_result.rewards if event.result.verifier_result else None) or {}
            # For the progress display only: the score is read from the trial's result.json.
            # A verifier may write a huge reward file; the event line stays small.
            record["rewards"] = {"reward": rewards["reward"]} if isinstance(rewards.get("reward"), int | float) else None
            info = event.result.exception_info
            record["error"] = info.exception_type if info else None
        events.write(json.dumps(record) + "\n")

    job = await Job.create(config)
    if slots is not None:  # before `emit`: a trial has started once it has its slot
        job.on_trial_started(slots.wanted)
        job.on_trial_ended(slots.ended)
    job.on_trial_started(emit)
    job.on_trial_ended(emit)
    await job.run()


def warm_up() -> None:
    """Import LiteLLM (seconds) before the first job arrives, while the meta-agent is
    still thinking. Only libraries: each job imports the agent's module as it is then."""
    if os.environ.get("AUTOAGENT_WARM_LITELLM") == "1":
        from autoagent.llm import _litellm

        _litellm()


async def run_jobs(requests: asyncio.Queue, events, slots: Slots) -> None:
    """The jobs, in the order they were asked for; None ends the queue."""
    while (request := await requests.get()) is not None:
        os.environ.update(request.get("env") or {})  # e.g. which experiment the spend is for
        done = {"event": "job-done", "config": request["config"], "ok": True}
        try:
            await run(request["config"], events, slots if request.get("gated") else None)
        except Exception:
            traceback.print_exc()
            done.update(ok=False, error=traceback.format_exc(limit=3).strip().splitlines()[-1])
        events.write(json.dumps(done) + "\n")


async def main() -> None:
    warm_up()
    events = os.fdopen(int(os.environ["AUTOAGENT_EVENTS_FD"]), "w", buffering=1)
    slots = Slots(events)
    requests: asyncio.Queue = asyncio.Queue()
    jobs = asyncio.create_task(run_jobs(requests, events, slots))
    stdin = asyncio.StreamReader(limit=2**20)  # read on the loop: no thread of the executor kept waiting
    await asyncio.get_running_loop().connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    while line := (await stdin.readline()).strip():
        message = json.loads(line)  # {"config": path, "env": {...}, "gated": bool} or {"grant": trial}
        if "grant" in message:
            slots.granted(message["grant"])
        else:
            requests.put_nowait(message)
    requests.put_nowait(None)
    await jobs
    events.flush()
    pool.close_all()  # the spare harness box
    os._exit(0)  # every job is done and recorded; skip tearing down the interpreter

if __name__ == "__main__":
    die_with_parent()
    asyncio.run(main())
