"""A provider that throttles sandbox creation: the pool's start rate keeps under its quota.

The provider is tests/cloud_standin.py (the sandbox with a creation quota), loaded by the
worker process by its import path, as a cloud environment would be."""

import asyncio
from pathlib import Path

import pytest

from autoagent.evaluate import evaluate
from autoagent.evaluate.pool import TrialPool
from autoagent.evaluate.results import read_trial
from tests import cloud_standin
from tests.conftest import REPO, write_task

pytestmark = pytest.mark.usefixtures("needs_sandbox")

STANDIN = "tests.cloud_standin:CloudStandin"
TRIALS = 10


@pytest.fixture
def tiny_tasks(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the worker process imports tests.cloud_standin
    for name in ("one", "two"):
        write_task(tmp_path / "tasks", name, test="echo 1 > /logs/verifier/reward.txt")
    return tmp_path / "tasks"


def run(tasks: Path, tmp_path: Path, pool: TrialPool | None):
    quota = {"ledger_dir": str(tmp_path / "provider"), "max_starts": 3, "per_sec": 1.0}
    return asyncio.run(evaluate(tasks, "oracle", attempts=TRIALS // 2, n_concurrent=TRIALS, environment=STANDIN,
                                environment_kwargs=quota, jobs_dir=tmp_path / "jobs", pool=pool))  # fmt: skip


def test_without_a_start_rate_a_burst_of_trials_is_throttled(tiny_tasks, tmp_path):
    result = run(tiny_tasks, tmp_path, pool=None)
    assert cloud_standin.ledger(tmp_path / "provider")["throttled"] > 0
    refused = [read_trial(Path(d)) for d in result.retried]
    assert refused and all(t.category == "infra" and "TooManyRequestsError" in t.error for t in refused)


def test_with_a_start_rate_no_start_is_throttled(tiny_tasks, tmp_path):
    result = run(tiny_tasks, tmp_path, pool=TrialPool(TRIALS, start_rate=1.5))  # well under 3 a second
    assert cloud_standin.ledger(tmp_path / "provider") == {"starts": TRIALS, "failed": 0, "throttled": 0}
    assert (result.passed, result.errors, result.retried) == (TRIALS, {}, [])
