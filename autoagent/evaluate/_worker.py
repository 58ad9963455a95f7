"""Run one Harbor job, then exit: `python -m autoagent.evaluate._worker CONFIG_JSON`.

Harbor imports an agent's module once per process, so every evaluation runs here,
in a process of its own, or an edited `agent.py` would be evaluated as the old one.
Trial events go to the file descriptor in AUTOAGENT_EVENTS_FD as JSON lines.
"""

import asyncio
import ctypes
import json
import os
import signal
import sys
from pathlib import Path

from harbor.job import Job
from harbor.models.job.config import JobConfig
from harbor.trial.hooks import TrialHookEvent


def die_with_parent() -> None:
    """If the process that started us is killed, stop too (our sandboxes follow)."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() == 1:  # the parent died before we got here
        sys.exit(1)


async def main(config_path: str) -> None:
    config = JobConfig.model_validate_json(Path(config_path).read_text())
    fd = os.environ.get("AUTOAGENT_EVENTS_FD")
    events = os.fdopen(int(fd), "w", buffering=1) if fd else None

    async def emit(event: TrialHookEvent) -> None:
        if events is None:
            return
        record = {"event": event.event.value, "trial": event.trial_name, "task": event.task_name}
        if event.event.value == "end":
            record["trial_dir"] = str(Path(config.jobs_dir) / config.job_name / event.trial_name)
            rewards = event.result.verifier_result.rewards if event.result.verifier_result else None
            record["rewards"] = rewards
            info = event.result.exception_info
            record["error"] = info.exception_type if info else None
        events.write(json.dumps(record) + "\n")

    job = await Job.create(config)
    job.on_trial_started(emit)
    job.on_trial_ended(emit)
    await job.run()


if __name__ == "__main__":
    die_with_parent()
    asyncio.run(main(sys.argv[1]))
