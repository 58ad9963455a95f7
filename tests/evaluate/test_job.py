"""The worker process that runs Harbor jobs."""

import os
import signal

import pytest

from autoagent.evaluate.job import (
    JobFailed,
    Worker,
    agent_config,
    environment_config,
    job_config,
    unique_job_name,
)
from tests.conftest import EXAMPLE_TASKS


@pytest.mark.parametrize("reaped", [True, False], ids=["reaped", "just-killed"])
async def test_a_worker_that_died_while_idle_fails_the_next_job_clearly(tmp_path, reaped):
    config = job_config(
        task_paths=[EXAMPLE_TASKS / "hello-file"],
        agent=agent_config("nop"),
        environment=environment_config("sandbox"),
        jobs_dir=tmp_path,
        job_name=unique_job_name("dead-worker"),
        n_concurrent=1,
        n_attempts=1,
    )
    async with Worker() as worker:
        await worker.start(tmp_path)  # opened ahead of time, as the loop does
        os.kill(worker._process.pid, signal.SIGKILL)  # only the process this test started
        if reaped:
            await worker._process.wait()
            expected = r"failed: the worker process exited with signal 9 before the job could start"
        else:  # however far the death has been noticed, the same kind of failure
            expected = r"failed: the worker process exited"
        with pytest.raises(JobFailed, match=expected):
            await worker.run(config)
