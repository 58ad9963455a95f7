"""One trial pool for every evaluation: slots, priorities, start rate, and dead workers."""

import asyncio
import json
import os
import signal
import time
from datetime import datetime
from pathlib import Path

import pytest

from autoagent.evaluate import evaluate
from autoagent.evaluate.job import JobFailed, Worker
from autoagent.evaluate.pool import TrialPool
from tests.conftest import _leftovers, write_task


def running_at_once(job_dirs: list[str]) -> int:
    """The most trials whose environments were up at the same moment, from Harbor's own
    records: from the environment's start to the trial's end, a trial holds its slot."""
    spans = []
    for job_dir in job_dirs:
        for result in Path(job_dir).glob("*/result.json"):
            data = json.loads(result.read_text())
            begin = datetime.fromisoformat(data["environment_setup"]["started_at"])
            spans.append((begin, datetime.fromisoformat(data["finished_at"])))
    edges = sorted([(begin, 1) for begin, _ in spans] + [(end, -1) for _, end in spans])  # ends first on a tie
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


async def test_lower_priorities_first_and_first_come_first_served_within_one():
    pool = TrialPool(1)
    first = await pool.acquire(0)
    served: list[str] = []

    async def ask(name: str, priority: int) -> None:
        async with pool.slot(priority):
            served.append(name)
            await asyncio.sleep(0.01)

    waiters = []
    for name, priority in [("big-a", 5), ("small-a", 1), ("big-b", 5), ("small-b", 1)]:
        waiters.append(asyncio.create_task(ask(name, priority)))
        await asyncio.sleep(0)  # each asks in this order
    pool.release(first)
    await asyncio.gather(*waiters)
    assert served == ["small-a", "small-b", "big-a", "big-b"]
    assert pool.stats().in_use == 0


async def test_a_waiter_that_gives_up_takes_no_slot():
    pool = TrialPool(1)
    first = await pool.acquire()
    gave_up = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    gave_up.cancel()
    later = asyncio.create_task(pool.acquire())
    await asyncio.sleep(0)
    pool.release(first)
    assert (await asyncio.wait_for(later, 1)).number == 2
    assert pool.stats().in_use == 1


async def test_the_start_rate_spaces_grants_and_utilisation_is_counted():
    pool = TrialPool(8, start_rate=20, jitter=0.5)
    started = time.monotonic()
    grants = [await pool.acquire() for _ in range(5)]
    times = [grant.since for grant in grants]
    assert all(later - earlier >= 1 / 20 for earlier, later in zip(times, times[1:]))
    assert all(later - earlier <= 1.5 / 20 + 0.02 for earlier, later in zip(times, times[1:]))
    await asyncio.sleep(0.1)
    for grant in grants:
        pool.release(grant)
    stats = pool.stats()
    elapsed = time.monotonic() - started
    assert stats.granted == 5 and stats.in_use == 0
    assert 5 * 0.1 <= stats.busy <= 5 * elapsed
    assert stats.available == pytest.approx(8 * elapsed, rel=0.1)
    assert "slot-seconds busy" in stats.line()


def test_a_pool_serves_a_later_event_loop_too():
    pool = TrialPool(2, start_rate=1)

    async def first_run() -> None:
        pool.release(await pool.acquire())
        waiting = asyncio.create_task(pool.acquire())  # spaced: waits for a timer of this loop
        await asyncio.sleep(0.01)
        waiting.cancel()

    asyncio.run(first_run())
    assert asyncio.run(asyncio.wait_for(pool.acquire(), 3)).number == 2


needs_sandbox = pytest.mark.usefixtures("needs_sandbox")


def slow_tasks(root: Path, names: list[str], seconds: float) -> Path:
    for name in names:
        write_task(root, name, test="echo 1 > /logs/verifier/reward.txt", solve=f"sleep {seconds}")
    return root


@needs_sandbox
async def test_two_evaluations_at_once_never_run_more_trials_than_the_pool_has_slots(tmp_path):
    tasks = slow_tasks(tmp_path / "tasks", ["a", "b", "c"], 1.5)
    pool = TrialPool(2)
    first, second = await asyncio.gather(*[
        evaluate(tasks, "oracle", jobs_dir=tmp_path / "jobs", job_prefix=f"e{n}", n_concurrent=4,
                 pool=pool, priority=n)
        for n in (1, 2)
    ])  # fmt: skip
    assert (first.passed, second.passed) == (3, 3)
    assert running_at_once(first.job_dirs + second.job_dirs) == 2
    stats = pool.stats()
    assert stats.granted == 6 and stats.in_use == 0
    assert stats.busy >= 6 * 1.5


@needs_sandbox
async def test_slots_come_back_when_a_worker_is_killed_mid_job(tmp_path, sandbox_state):
    tasks = slow_tasks(tmp_path / "tasks", ["slow-a", "slow-b"], 60)
    pool = TrialPool(2)
    async with Worker() as worker:
        running = asyncio.create_task(
            evaluate(tasks, "oracle", jobs_dir=tmp_path / "jobs", worker=worker, pool=pool, infra_retries=0)
        )
        deadline = time.monotonic() + 60
        while pool.stats().in_use < 2:
            assert time.monotonic() < deadline and not running.done()
            await asyncio.sleep(0.1)
        os.kill(worker._process.pid, signal.SIGKILL)  # only the process this test started
        with pytest.raises(JobFailed):
            await running
    assert pool.stats().in_use == 0
    write_task(tmp_path / "quick", "quick", test="echo 1 > /logs/verifier/reward.txt")
    later = await asyncio.wait_for(evaluate(tmp_path / "quick", "oracle", jobs_dir=tmp_path / "jobs", pool=pool), 120)
    assert later.passed == 1
    assert not _leftovers(sandbox_state)


@needs_sandbox
async def test_across_worker_processes_the_smaller_request_is_served_first(tmp_path):
    tasks = slow_tasks(tmp_path / "tasks", ["t"], 0)
    pool = TrialPool(1)
    hold = await pool.acquire()  # the pool is busy while both evaluations ask

    def run(name: str, priority: int):
        return asyncio.create_task(evaluate(tasks, "oracle", jobs_dir=tmp_path / "jobs", job_prefix=name,
                                            pool=pool, priority=priority))  # fmt: skip

    big = run("big", 9)
    deadline = time.monotonic() + 60
    while pool.stats().waiting < 1:  # the big one asked first
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    small = run("small", 1)
    while pool.stats().waiting < 2:
        assert time.monotonic() < deadline
        await asyncio.sleep(0.05)
    await asyncio.sleep(4)
    pool.release(hold)
    started = {}
    for name, result in (("big", await big), ("small", await small)):
        [job_dir] = result.job_dirs
        [trial] = Path(job_dir).glob("*/result.json")
        started[name] = datetime.fromisoformat(json.loads(trial.read_text())["environment_setup"]["started_at"])
        assert result.trials[0].seconds < 4  # its own time, not its wait for the slot
    assert started["small"] < started["big"]
