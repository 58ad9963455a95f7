"""The console a newcomer meets first: help, version, widths off a terminal, clear refusals."""

import signal
import subprocess
import sys
import time
import webbrowser
from pathlib import Path

from rich.console import Console
from typer.testing import CliRunner

from autoagent import display, workspace
from autoagent.cli import app
from autoagent.evaluate.evaluation import EvalResult, TaskResult
from autoagent.evaluate.results import Trial
from autoagent.ledger import Experiment, Ledger
from tests.conftest import flat, write_task


def invoke(*args: str):
    return CliRunner().invoke(app, list(args))


def test_help_reads_like_a_manual():
    for command in ("eval", "run", "check", "init"):
        result = invoke(command, "--help")
        assert result.exit_code == 0
        assert "<bool>" not in result.output and "<str>" not in result.output, result.output
    assert "Model for the agent [autoagent.toml]" in flat(invoke("eval", "--help").output)
    assert "Stop after N proposals, failed ones too." in flat(invoke("run", "--help").output)


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0
    assert result.output.startswith("autoagent ") and "harbor 0.26" in result.output


def test_long_lines_are_not_wrapped_off_a_terminal(tmp_path, monkeypatch):
    monkeypatch.delenv("COLUMNS", raising=False)
    target = tmp_path / ("a-workspace-with-a-rather-long-name-" + "x" * 40)
    result = invoke("init", str(target), "-m", "scripted/examples")
    assert result.exit_code == 0, result.output
    line = next(line for line in result.output.splitlines() if line.startswith("Created"))
    assert line.endswith("tasks."), result.output  # one line, however long
    assert len(line) > 120


def test_an_error_is_shown_whole_in_the_eval_table():
    advice = "set OPENAI_API_KEY or [agent] api_base in autoagent.toml"
    error = "AuthenticationError: " + "the provider refused the request " * 6 + advice
    result = EvalResult(tasks=[TaskResult("word-count", [Trial("word-count", "t", "/x", 0.0, error, "agent")])])
    console = Console(width=200, record=True, file=open("/dev/null", "w"))
    console.print(display.eval_table(result, "t"))
    rows = [line.split("│") for line in console.export_text().splitlines() if line.count("│") > 3]
    error_column = " ".join(row[3].strip() for row in rows)  # the cell, wrapped over several lines
    assert advice in error_column


def test_init_refuses_a_directory_without_tasks(tmp_path):
    empty = tmp_path / "nothing-here"
    empty.mkdir()
    result = invoke("init", str(tmp_path / "ws"), "--tasks", str(empty))
    assert result.exit_code == 2
    assert "no Harbor tasks there" in flat(result.output) and "Nothing was created" in result.output
    assert not (tmp_path / "ws").exists()


def test_a_dataset_that_cannot_be_downloaded_leaves_nothing(tmp_path):
    """Harbor's own downloader, with no registry to reach (as here, and in CI)."""
    result = invoke("init", str(tmp_path / "ws"), "--tasks", "no-such-bench@1.0")
    assert result.exit_code == 2 and "Could not download the Harbor dataset no-such-bench@1.0" in flat(result.output)
    assert "⠋" not in result.output and "│" not in result.output  # no spinner, no traceback box
    assert not (tmp_path / "ws").exists()


def test_spinner_and_traceback_boxes_are_not_the_error():
    output = "⠋ Downloading...\r⠙ Downloading...\n╭── Traceback ──╮\n│ frame │\n╰───────╯\nConnectError: [Errno -2] Name or service not known\n"
    assert workspace._last_words(output) == "ConnectError: [Errno -2] Name or service not known"


def test_an_agent_module_that_does_not_exist_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("eval", str(tmp_path), "--agent", "nomodule:Agent")
    assert result.exit_code == 2
    assert "--agent nomodule:Agent: no module named 'nomodule'" in flat(result.output)
    assert "Traceback" not in result.output and "❌" not in result.output


def test_unknown_section_names_its_line(tmp_path):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    toml = ws.root / "autoagent.toml"
    toml.write_text(toml.read_text() + "\n[budegt]\nhours = 1\n")
    from autoagent.config import ConfigError, load

    lines = toml.read_text().splitlines()
    try:
        load(toml)
    except ConfigError as error:
        assert f"line {lines.index('[budegt]') + 1}" in str(error) and "budegt" in str(error)
    else:
        raise AssertionError("an unknown section was accepted")


def test_report_open_without_a_browser_says_so(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    monkeypatch.chdir(ws.root)
    monkeypatch.setattr(webbrowser, "open", lambda url: False)  # what it returns with no display
    result = invoke("report", "--open")
    assert result.exit_code == 0
    assert "No browser could be opened" in flat(result.output)


def test_status_mentions_evals_and_failed_proposals(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    job = ws.root / ".autoagent" / "jobs" / "eval-20261201-000000-abcdef"
    job.mkdir(parents=True)
    (job / "result.json").write_text("{}")
    monkeypatch.chdir(ws.root)
    assert f"the latest: {job}" in flat(invoke("status").output)

    ledger = Ledger(ws.root)
    ledger.save(Experiment(0, "baseline", commit="a" * 40, description="baseline", passed=2, total=3))
    ledger.note("meta_failure", experiment=1, reason="the meta-agent hit its time limit", log="x")
    ledger.save(Experiment(1, "discard", commit="b" * 40, passed=2, total=3,
                           description="a description that is long enough to need cutting somewhere " * 3))
    output = flat(invoke("status").output)
    assert "Failed proposals: 1" in output and "hit its time limit" in output
    assert "somewhere a description that is long …" in output  # cut between words


def test_check_progress_tells_oracle_from_nop(tmp_path, monkeypatch, needs_sandbox):
    tasks = tmp_path / "tasks"
    write_task(tasks, "sound", test="test -f /app/done && echo 1 > /logs/verifier/reward.txt || echo 0 > /logs/verifier/reward.txt",
               solve="touch /app/done")
    monkeypatch.chdir(tmp_path)
    result = invoke("check", str(tasks), "-n", "1")
    assert result.exit_code == 0, result.output
    assert "oracle sound: 1.0 (oracle mean 1.00)" in result.output
    assert "nop sound: 0.0 (nop mean 0.00)" in result.output


def test_ctrl_c_during_eval_prints_a_summary(tmp_path, needs_sandbox):
    tasks = tmp_path / "tasks"
    write_task(tasks, "fast", test="echo 1 > /logs/verifier/reward.txt")
    write_task(tasks, "slow", test="echo 1 > /logs/verifier/reward.txt", solve="sleep 300")
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "autoagent"), "eval", str(tasks), "-n", "2"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    lines = []
    started = time.monotonic()
    for line in process.stdout:
        lines.append(line)
        if line.startswith("[1/2]"):
            process.send_signal(signal.SIGINT)
    process.wait(timeout=120)
    output = "".join(lines)
    assert process.returncode == 130, output
    assert "Interrupted: 1 of 2 trials finished (mean 1.00)" in output
    assert "CancelledError" not in output
    assert time.monotonic() - started < 120


def test_an_agent_class_that_does_not_exist_is_one_line(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    monkeypatch.chdir(ws.root)
    result = invoke("eval", "--agent", "agent:Nope", "-l", "1", "-q")
    assert result.exit_code == 2
    assert "defines no class Nope" in flat(result.output)
    assert 'File "' not in result.output and "Traceback" not in result.output


def test_run_takes_its_environment_width_and_start_rate_from_the_command_line(tmp_path, monkeypatch):
    """The baseline of `run --iterations 0` runs on the environment and at the width and start rate
    the command line names: the cloud stand-in counts its starts and would refuse a burst."""
    from tests import cloud_standin
    from tests.conftest import REPO

    monkeypatch.setenv("PYTHONPATH", str(REPO))  # worker processes import tests.cloud_standin
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    monkeypatch.chdir(ws.root)
    unknown = invoke("run", "-e", "nosuch", "--iterations", "0")
    assert unknown.exit_code == 2 and "Unknown environment 'nosuch'" in flat(unknown.output)
    assert "--candidates: how many candidates at once" in flat(invoke("run", "--candidates", "0").output)
    assert "starts per second, a positive number" in flat(invoke("run", "--start-rate", "0").output)
    provider = tmp_path / "provider"
    result = invoke("run", "-e", "tests.cloud_standin:CloudStandin", "--ek", f"ledger_dir={provider}",
                    "--ek", "max_starts=2", "-n", "6", "--start-rate", "1.5", "--iterations", "0",
                    "--meta-model", "scripted/demo-meta", "--plain")  # fmt: skip
    assert result.exit_code == 0, result.output
    baseline = Ledger(ws.root).experiments()[0]
    assert baseline.status == "baseline" and len(baseline.trials) == 6  # 3 tasks, 2 attempts each
    assert cloud_standin.ledger(provider) == {"starts": 6, "failed": 0, "throttled": 0}  # spaced: none refused
