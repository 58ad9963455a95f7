"""`autoagent run` end to end, offline: scripted meta-agent, scripted task model, real tasks."""

import asyncio
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoagent import workspace
from autoagent.cli import app
from autoagent.history import History
from autoagent.ledger import Ledger
from autoagent.loop import Loop, RunError, Settings
from autoagent.meta.agent import Limits
from autoagent.spend import Meter
from autoagent.strategies.budget import Budget
from tests.conftest import REAL_TASKS

pytestmark = pytest.mark.usefixtures("needs_sandbox")

PROMPT_OLD = "When the task is complete, reply with a short summary and no tool call."
PROMPT_NEW = "Before you finish, re-read the instruction and check every requirement.\n" + PROMPT_OLD


def tool(name: str, **arguments) -> dict:
    return {"content": "", "tool_calls": [{"name": name, "arguments": arguments}]}


def submit(description: str, flips: list[str]) -> dict:
    return tool("submit", description=description, hypothesis="h", expected_flips=flips,
                overfitting="Yes, it is general.")  # fmt: skip


def write_script(directory: Path, name: str, conversations: list[dict], **extra) -> None:
    (directory / f"{name}.json").write_text(json.dumps({"conversations": conversations, **extra}))


# Experiment 1 truly helps, 2 changes nothing useful, 3 breaks the import.
META = [
    {"match": "^# Experiment 1:", "turns": [
        tool("read_trajectory", experiment="0", task="regex-log"),
        tool("edit_file", path="agent.py", old_text=PROMPT_OLD, new_text=PROMPT_NEW),
        submit("Re-read the instruction before finishing", ["regex-log"]),
    ]},
    {"match": "^# Experiment 2:", "turns": [
        tool("edit_file", path="agent.py", old_text="MAX_TURNS = 30", new_text="MAX_TURNS = 35"),
        submit("More turns", []),
    ]},
    {"match": "^# Experiment 3:", "turns": [
        tool("edit_file", path="agent.py", old_text="from autoagent import llm\n",
             new_text="from autoagent import llm\nimport no_such_module\n"),
        submit("Use a helper module", []),
    ]},
]  # fmt: skip


def test_keep_discard_and_crash_on_real_tasks(tmp_path, scripts, monkeypatch):
    regex = (REAL_TASKS / "terminal-bench-2" / "regex-log" / "solution" / "solve.sh").read_text()
    logs = (REAL_TASKS / "terminal-bench-2" / "log-summary-date-ranges" / "solution" / "solve.sh").read_text()
    logs = logs.replace("apt-get update && apt-get install -y grep coreutils", "")
    write_script(scripts, "task", [
        {"match": "regex", "system": "re-read the instruction", "turns": [tool("bash", command=regex), {"content": "done"}]},
        {"match": "regex", "turns": [tool("bash", command="echo '\\d{4}-\\d{2}-\\d{2}' > /app/regex.txt"), {"content": "done"}]},
        {"match": "summary.csv", "turns": [tool("bash", command=logs), {"content": "done"}]},
    ])  # fmt: skip
    write_script(scripts, "meta", META)
    ws = workspace.init(tmp_path / "ws", str(REAL_TASKS / "terminal-bench-2"), model="scripted/task")
    toml = ws.root / "autoagent.toml"  # the reference rule, one baseline run: the loop's mechanics
    toml.write_text(toml.read_text().replace('gate = "paired"', 'gate = "reference"')
                    .replace("baseline_attempts = 2", "baseline_attempts = 1"))  # fmt: skip
    monkeypatch.chdir(ws.root)
    result = CliRunner().invoke(app, ["run", "--iterations", "3", "--meta-model", "scripted/meta"])
    assert result.exit_code == 0, result.output
    assert "3 iterations done" in result.output

    ledger = Ledger(ws.root)
    records = [r for r in ledger.records() if r["kind"] == "experiment"]
    assert (records[0]["id"], records[0]["status"]) == (0, "running")  # the baseline ran first
    experiments = ledger.experiments()
    assert [(e.id, e.status, e.passed) for e in experiments] == [
        (0, "baseline", 1), (1, "keep", 2), (2, "discard", 2), (3, "crash", None)
    ]
    assert experiments[1].flips == {"fixed": ["regex-log"], "broken": []}
    assert experiments[1].expected_flips == ["regex-log"]
    assert "passed rose from 1 to 2 of 2" in experiments[1].reason
    assert "no_such_module" in experiments[3].reason
    assert all(e.cost_usd["task"] > 0 for e in experiments[:3])
    assert all(e.cost_usd["meta"] > 0 for e in experiments[1:])

    rows = [line.split("\t") for line in (ws.root / "results.tsv").read_text().splitlines()]
    assert rows[0] == ["commit", "avg_score", "passed", "task_scores", "cost_usd", "status", "description", "hit_rate",
                       "cost_per_task"]  # fmt: skip
    assert rows[2][7] == "1.00"  # experiment 1 fixed the one task it expected to
    assert [(row[2], row[5]) for row in rows[1:]] == [("1/2", "baseline"), ("2/2", "keep"), ("2/2", "discard"), ("", "crash")]

    history = History(ws.root)
    candidates = {i: history.candidate(i) for i in (1, 2, 3)}
    assert all(candidates.values())
    assert history.head() == candidates[1] == experiments[1].commit
    for i in (2, 3):
        assert history.git("rev-parse", f"{candidates[i]}^") == candidates[1]
    assert (ws.root / "agent.py").read_text() == history.show(candidates[1], "agent.py")
    assert PROMPT_NEW in (ws.root / "agent.py").read_text()
    assert history.git("status", "--porcelain") == "M autoagent.toml"  # our edit above, left alone
    jobs = sorted(ws.jobs_dir.glob("exp*.config.json"), key=lambda p: p.stat().st_mtime)
    assert jobs[0].name.startswith("exp0-eval")


def test_a_killed_run_resumes_consistently(tmp_path, scripts):
    # Every task takes a few seconds, so that the kill lands inside an evaluation.
    write_script(scripts, "slow", [{"match": ".", "turns": [tool("bash", command="sleep 3"), {"content": "no"}]}])
    write_script(scripts, "meta", [
        {"match": f"^# Experiment {n}:", "turns": [
            tool("edit_file", path="agent.py", old_text="MAX_TURNS = 30", new_text=f"MAX_TURNS = 3{n}"),
            submit(f"Turn budget, take {n}", []),
        ]} for n in (1, 2, 3)
    ])  # fmt: skip
    ws = workspace.init(tmp_path / "ws", model="scripted/slow")
    command = [str(Path(sys.executable).parent / "autoagent"), "run", "--iterations", "2", "--meta-model", "scripted/meta"]
    log = open(tmp_path / "first.log", "w")
    first = subprocess.Popen(command, cwd=ws.root, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 240
    while not list(ws.jobs_dir.glob("exp1-eval-*/*/trial.log")):  # experiment 1's evaluation is on
        assert time.monotonic() < deadline and first.poll() is None, (tmp_path / "first.log").read_text()
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    time.sleep(1)
    running = Ledger(ws.root).experiments()[-1]
    assert (running.id, running.status) == (1, "running")

    second = subprocess.run(command, cwd=ws.root, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "experiment 1: the run stopped during it; evaluating it again" in second.stdout
    ledger = Ledger(ws.root)
    experiments = ledger.experiments()
    assert [e.id for e in experiments] == [0, 1, 2]  # the redone experiment 1, then one more
    assert all(e.final for e in experiments)
    assert experiments[1].status in ("keep", "discard") and experiments[1].passed is not None
    rows = (ws.root / "results.tsv").read_text().splitlines()[1:]
    assert len(rows) == 3  # no row lost, none twice
    history = History(ws.root)
    assert history.head() == ledger.best().commit
    assert history.git("status", "--porcelain") == ""


def test_a_usd_budget_holds_within_one_trial(tmp_path, scripts, monkeypatch):
    expensive = {"input": 200.0, "output": 1000.0}  # made-up prices, so that money runs out
    write_script(scripts, "pricey", [{"match": ".", "turns": [
        tool("bash", command="ls /app"), tool("bash", command="true"), {"content": "done"}]}],
        price_per_million=expensive)  # fmt: skip
    write_script(scripts, "meta", [{"match": ".", "turns": [
        tool("edit_file", path="agent.py", old_text="MAX_TURNS = 30", new_text="MAX_TURNS = 31"),
        submit("More turns", [])]}], price_per_million=expensive)  # fmt: skip
    ws = workspace.init(tmp_path / "ws", model="scripted/pricey")
    monkeypatch.chdir(ws.root)
    budget = 2.0
    settings = Settings.from_workspace(ws, meta_model="scripted/meta", budget=Budget(usd=budget))
    reason = asyncio.run(Loop(ws, settings, report=lambda line: None).run())
    meter = Meter(ws.root / ".autoagent" / "spend.jsonl")
    spent = meter.spent()
    trial_costs = [t["cost_usd"] or 0 for e in Ledger(ws.root).experiments() for t in e.trials]
    assert "budget-usd 2" in reason
    assert spent <= budget + max(trial_costs)
    assert meter.refusals() >= 1  # it stopped because the next call would have crossed it
    assert meter.spent(role="meta") > 0 and meter.spent(role="task") > 0


def test_a_budget_spent_during_the_baseline_stops_cleanly_and_the_next_run_redoes_it(tmp_path, scripts,
                                                                                     monkeypatch):  # fmt: skip
    write_script(scripts, "pricey", [{"match": ".", "turns": [tool("bash", command="true"), {"content": "done"}]}],
                 price_per_million={"input": 200.0, "output": 1000.0})  # fmt: skip
    ws = workspace.init(tmp_path / "ws", model="scripted/pricey")
    monkeypatch.chdir(ws.root)
    settings = Settings.from_workspace(ws, meta_model="scripted/pricey", budget=Budget(usd=0.05))
    reason = asyncio.run(Loop(ws, settings, report=lambda line: None).run())
    assert "budget ran out" in reason
    [baseline] = Ledger(ws.root).experiments()
    assert baseline.status == "interrupted" and baseline.trials  # what ran is recorded
    settings = Settings.from_workspace(ws, meta_model="scripted/pricey", budget=Budget(iterations=0))
    asyncio.run(Loop(ws, settings, report=lambda line: None).run())
    [baseline] = Ledger(ws.root).experiments()
    assert baseline.status == "baseline" and baseline.passed is not None


def test_a_candidate_that_kills_its_worker_is_a_crash_and_the_run_goes_on(tmp_path, scripts, monkeypatch):
    signature_end = "    api_base: str | None = None,\n) -> None:\n"
    write_script(scripts, "meta", [{"match": "^# Experiment 1:", "turns": [
        tool("edit_file", path="agent.py", old_text=signature_end,
             new_text=signature_end + "    import os\n    os.kill(os.getpid(), 9)\n"),
        submit("Exit fast", [])]}])  # fmt: skip
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    monkeypatch.chdir(ws.root)
    settings = Settings.from_workspace(ws, meta_model="scripted/meta", budget=Budget(iterations=1),
                                       include=["hello-file"])  # fmt: skip
    reason = asyncio.run(Loop(ws, settings, report=lambda line: None).run())
    assert reason == "1 iterations done (--iterations 1)"
    crashed = Ledger(ws.root).experiments()[1]
    # It kills its harness box, not the worker: its trial breaks, the run goes on.
    assert crashed.status == "crash" and "the harness broke" in crashed.reason
    assert "os.kill" not in ws.harness.read_text()  # the best harness is back


def test_a_failing_meta_agent_is_recorded_and_the_run_goes_on(tmp_path, scripts, monkeypatch):
    write_script(scripts, "chatty", [{"match": ".", "turns": [{"content": "Let me think."}] * 10}])
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    monkeypatch.chdir(ws.root)
    settings = Settings.from_workspace(
        ws, meta_model="scripted/chatty", budget=Budget(iterations=2),
        limits=Limits(turns=3), retry_wait_sec=0.01, include=["hello-file"],
    )  # fmt: skip
    lines: list[str] = []
    reason = asyncio.run(Loop(ws, settings, report=lines.append).run())
    assert reason == "2 iterations done (--iterations 2)"
    failures = Ledger(ws.root).events("meta_failure")
    assert [f["reason"] for f in failures] == ["no submission within 3 turns"] * 2
    assert Path(failures[0]["log"]).is_file()
    assert [e.status for e in Ledger(ws.root).experiments()] == ["baseline"]


def test_ctrl_c_stops_cleanly_and_twice_aborts_at_once(tmp_path, scripts):
    write_script(scripts, "slow", [{"match": ".", "turns": [tool("bash", command="sleep 20"), {"content": "no"}]}])
    ws = workspace.init(tmp_path / "ws", model="scripted/slow")
    command = [str(Path(sys.executable).parent / "autoagent"), "run", "--meta-model", "scripted/slow"]

    def start_and_wait_for_trials() -> subprocess.Popen:
        process = subprocess.Popen(command, cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 120
        while not [p for p in ws.jobs_dir.glob("exp0-eval-*/*/trial.log") if p.stat().st_mtime > started]:
            assert time.monotonic() < deadline and process.poll() is None
            time.sleep(0.2)
        return process

    started = time.time()
    first = start_and_wait_for_trials()
    first.send_signal(signal.SIGINT)
    output, _ = first.communicate(timeout=120)
    assert first.returncode == 0, output
    assert "Stopping: recording what this run has" in output and "stopped by the user" in output
    assert [(e.id, e.status) for e in Ledger(ws.root).experiments()] == [(0, "interrupted")]
    assert History(ws.root).git("status", "--porcelain") == ""

    started = time.time()
    second = start_and_wait_for_trials()
    second.send_signal(signal.SIGINT)
    time.sleep(0.05)  # long enough for the first to be handled, too short for a clean stop
    second.send_signal(signal.SIGINT)
    began = time.monotonic()
    second.communicate(timeout=30)
    assert second.returncode == 130 and time.monotonic() - began < 10


def test_a_branch_moved_by_hand_is_not_reset_silently(tmp_path):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    history = History(ws.root)
    ledger = Ledger(ws.root)
    from autoagent.ledger import Experiment

    ledger.save(Experiment(0, "baseline", commit=history.head()))
    ws.harness.write_text(ws.harness.read_text().replace("MAX_TURNS = 30", "MAX_TURNS = 12"))
    history.git("commit", "-qam", "my own change")
    loop = Loop(ws, Settings.from_workspace(ws), report=lambda line: None)
    with pytest.raises(RunError, match="The branch moved since the last run"):
        asyncio.run(loop.run())
    assert "MAX_TURNS = 12" in ws.harness.read_text()
