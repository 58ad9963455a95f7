"""Faults an unattended night meets, and what the loop must do about them: real git, sandboxes
and Harbor; scripted models. After each run, runs.jsonl and results.tsv agree."""

import asyncio
import os
import signal
import subprocess
import sys
import threading
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
from autoagent.strategies.budget import Budget
from tests.conftest import write_task
from tests.evaluate.test_bad_tasks import HUGE_REWARD
from tests.test_loop import submit, tool, write_script

pytestmark = pytest.mark.usefixtures("needs_sandbox")

EDIT = tool("edit_file", path="agent.py", old_text="MAX_TURNS = 30", new_text="MAX_TURNS = 31")
RAISES = "    trace.user(instruction)\n"


def raising(kind: str, message: str) -> dict:
    """An edit that makes the harness raise an exception of this type name in every trial."""
    body = f"    class {kind}(Exception):\n        pass\n\n    raise {kind}({message!r})\n"
    return tool("edit_file", path="agent.py", old_text=RAISES, new_text=RAISES + body)


def assert_ledger_agrees(root: Path) -> None:
    """results.tsv has one row per final experiment of runs.jsonl, in order, same status."""
    final = [e for e in Ledger(root).experiments() if e.final]
    rows = [line.split("\t") for line in (root / "results.tsv").read_text().splitlines()[1:]]
    assert [(row[0], row[5]) for row in rows] == [((e.commit or "")[:7], e.status) for e in final]


def run(ws, lines: list[str] | None = None, **settings) -> str:
    loop = Loop(ws, Settings.from_workspace(ws, **settings), report=(lines if lines is not None else []).append)
    return asyncio.run(loop.run())


def test_a_huge_reward_file_is_its_tasks_error_and_the_run_resumes(tmp_path, scripts, monkeypatch):
    write_script(scripts, "meta", [{"match": ".", "turns": [EDIT, submit("More turns", [])]}])
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    write_task(ws.tasks_dir, "huge-reward", test=HUGE_REWARD)
    monkeypatch.chdir(ws.root)
    reason = run(ws, meta_model="scripted/meta", budget=Budget(iterations=1), retry_wait_sec=0.01)
    assert reason == "1 iterations done (--iterations 1)"
    baseline = Ledger(ws.root).experiments()[0]
    assert baseline.status == "baseline" and baseline.total == 4 and baseline.task_scores["huge-reward"] == 0
    errors = {t["error"] for t in baseline.trials if t["task"] == "huge-reward"}
    assert all("task huge-reward" in e and "KiB reward.json" in e for e in errors)
    assert_ledger_agrees(ws.root)

    reason = run(ws, meta_model="scripted/meta", budget=Budget(iterations=1), retry_wait_sec=0.01)  # resumes
    assert reason == "1 iterations done (--iterations 1)"
    assert [e.final for e in Ledger(ws.root).experiments()] == [True, True, True]
    assert_ledger_agrees(ws.root)


def test_a_stale_git_lock_is_cleared_and_said_and_the_loop_goes_on(tmp_path, scripts, monkeypatch):
    write_script(scripts, "meta", [{"match": ".", "turns": [EDIT, submit("More turns", [])]}])
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    monkeypatch.chdir(ws.root)
    options = dict(meta_model="scripted/meta", include=["hello-file"], retry_wait_sec=0.01)
    run(ws, budget=Budget(iterations=0), **options)  # the baseline
    lock = ws.root / ".git" / "index.lock"
    lock.write_text("")  # what a git killed mid-command leaves behind
    lines: list[str] = []
    reason = run(ws, lines, budget=Budget(iterations=1), **options)
    assert reason == "1 iterations done (--iterations 1)"
    assert not lock.exists()
    assert any(f"removed {lock}" in line for line in lines)
    assert Ledger(ws.root).experiments()[1].status in ("keep", "discard")
    assert_ledger_agrees(ws.root)


def test_a_lock_a_live_git_holds_is_left_alone_and_the_run_stops_with_a_message(tmp_path, scripts, monkeypatch):
    write_script(scripts, "meta", [{"match": ".", "turns": [EDIT, submit("More turns", [])]}])
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    monkeypatch.chdir(ws.root)
    options = dict(meta_model="scripted/meta", include=["hello-file"], retry_wait_sec=0.01)
    run(ws, budget=Budget(iterations=0), **options)
    lock = ws.root / ".git" / "refs" / "autoagent" / "candidates" / "1.lock"  # the candidate's ref
    lock.parent.mkdir(parents=True)
    lock.write_text("")
    busy_git = tmp_path / "bin" / "git"  # a process named git, at work in the repository
    busy_git.parent.mkdir()
    busy_git.write_bytes(Path("/bin/sleep").read_bytes())
    busy_git.chmod(0o755)
    holder = subprocess.Popen([str(busy_git), "300"], cwd=ws.root)
    try:
        with pytest.raises(RunError, match="git update-ref .* failed in .* kept failing.*1.lock.*the run resumes"):
            run(ws, budget=Budget(iterations=1), **options)
    finally:
        holder.kill()
        holder.wait()
    assert lock.exists()
    assert_ledger_agrees(ws.root)


def test_a_baseline_of_infrastructure_errors_is_no_starting_point(tmp_path, scripts, monkeypatch):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    toml = '[environment.healthcheck]\nretries = 0\ninterval_sec = 0.1\ncommand = "false"\n'
    write_task(ws.tasks_dir, "never-healthy", test="echo 1 > /logs/verifier/reward.txt", toml=toml)
    monkeypatch.chdir(ws.root)
    lines: list[str] = []
    reason = run(ws, lines, meta_model="scripted/examples", include=["never-healthy"], retry_wait_sec=0.01,
                 budget=Budget(iterations=3))  # fmt: skip
    assert "the baseline could not be measured 8 times in a row" in reason
    [baseline] = Ledger(ws.root).experiments()
    assert baseline.status == "interrupted"
    assert "not a starting point: 2 of 2 trials were infrastructure errors" in baseline.reason
    assert not Ledger(ws.root).events("meta_failure")  # nothing was proposed on top of it
    assert_ledger_agrees(ws.root)


def test_a_candidate_evaluation_of_infrastructure_errors_is_not_judged(tmp_path, scripts, monkeypatch):
    write_script(scripts, "meta", [{"match": ".", "turns": [
        raising("ModelUnavailableError", "the provider kept failing"), submit("Fails", [])]}])  # fmt: skip
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    monkeypatch.chdir(ws.root)
    lines: list[str] = []
    reason = run(ws, lines, meta_model="scripted/meta", include=["hello-file"], retry_wait_sec=0.01,
                 budget=Budget(iterations=1), baseline_attempts=1)  # fmt: skip
    # Evaluated again after each wait, never judged on it; after 3 it is set aside (its own code
    # may be the cause), and the run goes on: here, to the end of its one iteration.
    assert reason == "1 iterations done (--iterations 1)"
    candidate = Ledger(ws.root).experiments()[1]
    assert candidate.status == "rejected" and "measured nothing 3 times" in candidate.reason
    assert sum("experiment 1: not judged" in line for line in lines) == 3
    assert "ModelUnavailableError" not in ws.harness.read_text()  # the best harness is back
    assert_ledger_agrees(ws.root)


def test_a_model_configuration_error_stops_eval_with_its_message(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    harness = ws.harness.read_text()
    body = "    class ModelConfigurationError(Exception):\n        pass\n\n" \
           "    raise ModelConfigurationError('no credentials: set OPENAI_API_KEY (or [agent] api_base)')\n"  # fmt: skip
    ws.harness.write_text(harness.replace(RAISES, RAISES + body))
    monkeypatch.chdir(ws.root)
    result = CliRunner().invoke(app, ["eval", "-i", "hello-file", "-i", "csv-total"])
    assert result.exit_code == 1
    assert "set OPENAI_API_KEY (or [agent] api_base)" in " ".join(result.output.split())


def _kill_the_worker_once(jobs_dir: Path, pattern: str, done: threading.Event) -> None:
    deadline = time.monotonic() + 240
    while not list(jobs_dir.glob(pattern)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for entry in Path("/proc").iterdir():
        try:
            ours = entry.name.isdigit() and b"autoagent.evaluate._worker" in (entry / "cmdline").read_bytes()
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if ours and parent == os.getpid():
            os.kill(int(entry.name), signal.SIGKILL)
            done.set()
            return


def test_a_worker_killed_from_outside_is_infrastructure_not_a_crash(tmp_path, scripts, monkeypatch):
    write_script(scripts, "slow", [{"match": ".", "turns": [tool("bash", command="sleep 2"), {"content": "no"}]}])
    write_script(scripts, "meta", [{"match": ".", "turns": [EDIT, submit("More turns", [])]}])
    ws = workspace.init(tmp_path / "ws", model="scripted/slow")
    monkeypatch.chdir(ws.root)
    run(ws, meta_model="scripted/meta", include=["hello-file"], budget=Budget(iterations=0))
    killed = threading.Event()
    killer = threading.Thread(target=_kill_the_worker_once, args=(ws.jobs_dir, "exp1-*/*/trial.log", killed))
    killer.start()
    lines: list[str] = []
    reason = run(ws, lines, meta_model="scripted/meta", include=["hello-file"], budget=Budget(iterations=1))
    killer.join()
    assert killed.is_set() and reason == "1 iterations done (--iterations 1)"
    candidate = Ledger(ws.root).experiments()[1]
    assert candidate.status in ("keep", "discard"), candidate.reason
    assert any("running it again in a new worker" in line for line in lines)
    assert_ledger_agrees(ws.root)


def test_one_baseline_attempt_claims_no_noise_floor(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    monkeypatch.chdir(ws.root)
    lines: list[str] = []
    run(ws, lines, include=["hello-file"], budget=Budget(iterations=0), baseline_attempts=1)
    [baseline] = Ledger(ws.root).experiments()
    assert baseline.noise_floor is None
    assert "no noise floor" in baseline.reason and "baseline_attempts = 2" in baseline.reason
    assert not any("differ by about" in line for line in lines)
    assert_ledger_agrees(ws.root)


def test_no_wait_after_the_last_iteration(tmp_path, scripts, monkeypatch):
    write_script(scripts, "chatty", [{"match": ".", "turns": [{"content": "Let me think."}] * 10}])
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    monkeypatch.chdir(ws.root)
    phases: list[str] = []
    settings = Settings.from_workspace(ws, meta_model="scripted/chatty", include=["hello-file"],
                                       budget=Budget(iterations=1), limits=Limits(turns=2),
                                       retry_wait_sec=600)  # fmt: skip
    loop = Loop(ws, settings, report=lambda line: None, on_status=lambda live: phases.append(live.phase))
    reason = asyncio.run(asyncio.wait_for(loop.run(), timeout=300))
    assert reason == "1 iterations done (--iterations 1)"
    assert "waiting" not in phases
    assert_ledger_agrees(ws.root)


def test_ctrl_c_during_a_proposal_sets_its_edit_aside(tmp_path, scripts):
    write_script(scripts, "slow", [{"match": ".", "turns": [tool("bash", command="sleep 30"), {"content": "no"}]}])
    write_script(scripts, "meta", [{"match": "^# Experiment", "turns": [
        EDIT, tool("spot_check", tasks=["hello-file"]), submit("More turns", [])]}])  # fmt: skip
    ws = workspace.init(tmp_path / "ws", model="scripted/slow")
    (ws.root / "autoagent.toml").write_text(
        (ws.root / "autoagent.toml").read_text().replace("include = []", 'include = ["hello-file"]'))
    History(ws.root).git("commit", "-qam", "one task")
    subprocess.run([str(Path(sys.executable).parent / "autoagent"), "run", "--iterations", "0"], cwd=ws.root,
                   check=True, capture_output=True, timeout=300)  # fmt: skip
    command = [str(Path(sys.executable).parent / "autoagent"), "run", "--meta-model", "scripted/meta", "--plain"]
    process = subprocess.Popen(command, cwd=ws.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 240
    while not list(ws.jobs_dir.glob("exp1-spot*/*/trial.log")):  # the proposal's spot check is on
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    [patch] = (ws.root / ".autoagent" / "set-aside").glob("*.patch")
    assert "+MAX_TURNS = 31" in patch.read_text()
    assert "set aside in" in output and patch.name in output, output
    assert History(ws.root).git("status", "--porcelain") == ""
    assert_ledger_agrees(ws.root)


def test_a_candidates_own_model_without_a_key_is_its_failure_not_a_stop(tmp_path):
    """A candidate that calls a model of its own choosing (no key for it in its box) broke its
    harness; a failure of the configured model itself still stops the run."""
    from autoagent.evaluate.infra import ConfigurationFailed, check_configuration, harness_failure
    from autoagent.evaluate.results import Trial

    other = Trial("hello-file", "t", str(tmp_path), 0.0, "ModelConfigurationError: The model openai/gpt-4o-mini "
                  "needs an API key and OPENAI_API_KEY is not set", "configuration")  # fmt: skip
    check_configuration([other], "scripted/examples")  # not the configured model: no stop
    assert "openai/gpt-4o-mini" in harness_failure([other])  # the candidate's crash
    ours = Trial("hello-file", "t", str(tmp_path), 0.0, "ModelConfigurationError: The model scripted/examples: "
                 "the provider refused the credentials", "configuration")  # fmt: skip
    with pytest.raises(ConfigurationFailed):
        check_configuration([ours], "scripted/examples")
