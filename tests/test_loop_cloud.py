"""The loop on a (stood-in) cloud provider: wide, rate limited, with sandboxes that fail to start.

tests/cloud_standin.py is the sandbox behind a provider's manners: creation takes a while,
every few creations fail, and more than a quota of creations per second is refused (429)."""

import asyncio
from pathlib import Path

import pytest

from autoagent import workspace
from autoagent.evaluate.results import read_trial
from autoagent.ledger import Ledger
from autoagent.loop import Loop, Settings
from autoagent.strategies.budget import Budget
from tests import cloud_standin
from tests.conftest import REPO, write_task
from tests.test_loop import submit, tool, write_script

pytestmark = pytest.mark.usefixtures("needs_sandbox")


def test_the_loop_decides_every_candidate_while_the_provider_fails_some_starts(tmp_path, scripts, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # worker processes import tests.cloud_standin
    tasks = tmp_path / "tasks"
    for name in ("alpha", "beta", "gamma"):
        write_task(tasks, name, test="[ -f /app/out ] && echo 1 > /logs/verifier/reward.txt || "
                                     "echo 0 > /logs/verifier/reward.txt")  # fmt: skip
    write_script(scripts, "task", [{"match": ".", "turns": [tool("bash", command="echo ok > /app/out"),
                                                             {"content": "done"}]}])  # fmt: skip
    write_script(scripts, "meta", [
        {"match": f"^# Experiment {n}:", "turns": [
            tool("edit_file", path="agent.py", old_text="MAX_TURNS = 30", new_text=f"MAX_TURNS = 3{n}"),
            submit(f"Turn budget, take {n}", [])]}
        for n in (1, 2)
    ])  # fmt: skip
    ws = workspace.init(tmp_path / "ws", str(tasks), model="scripted/task")
    monkeypatch.chdir(ws.root)
    provider = tmp_path / "provider"
    settings = Settings.from_workspace(
        ws, meta_model="scripted/meta", budget=Budget(iterations=2), concurrency=32, start_rate=2, attempts=2,
        candidates=2,
        environment="tests.cloud_standin:CloudStandin",
        environment_kwargs={"ledger_dir": str(provider), "start_latency_sec": 0.2, "fail_every": 5,
                            "max_starts": 4, "per_sec": 1.0},  # 6 trials at once would be throttled
    )  # fmt: skip
    lines: list[str] = []
    loop = Loop(ws, settings, report=lines.append)
    reason = asyncio.run(loop.run())

    assert reason == "2 iterations done (--iterations 2)"
    experiments = Ledger(ws.root).experiments()
    assert [e.id for e in experiments] == [0, 1, 2]
    assert experiments[0].status == "baseline"
    assert {e.status for e in experiments[1:]} <= {"keep", "discard"}  # decided, none blamed for the provider
    assert all(t["category"] is None and t["reward"] == 1.0 for e in experiments for t in e.trials)
    seen = cloud_standin.ledger(provider)
    assert seen["failed"] >= 2 and seen["throttled"] == 0
    trials = [read_trial(trial) for e in experiments for job in e.job_dirs for trial in Path(job).iterdir()
              if trial.is_dir()]  # fmt: skip
    failed = [t for t in trials if "SandboxCreationError" in (t.error or "")]
    assert len(failed) == seen["failed"] and all(t.category == "infra" for t in failed)
    assert any("-retry1" in job for e in experiments for job in e.job_dirs)  # they ran again
    retried = [Path(d) for e in experiments for d in e.retried]  # and the ledger keeps them apart
    assert 0 < len(retried) <= seen["failed"] and all(read_trial(d).category == "infra" for d in retried)
    stats = loop.pool.stats()
    assert stats.in_use == 0 and stats.granted == seen["starts"] + seen["throttled"]
    assert any(line.startswith("trial slots: ") and "slot-seconds busy" in line for line in lines)
