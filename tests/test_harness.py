"""The workspace harness (templates/agent.py) end to end: init, then eval, offline."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from harbor.utils.trajectory_validator import TrajectoryValidator
from typer.testing import CliRunner

from autoagent import workspace
from autoagent.cli import app
from tests.conftest import REAL_TASKS
from tests.fake_openai import FakeOpenAI

pytestmark = pytest.mark.usefixtures("needs_sandbox")
REGEX_LOG = REAL_TASKS / "terminal-bench-2" / "regex-log"


def script(path: Path, match: str, turns: list[dict]) -> Path:
    path.write_text(json.dumps({"conversations": [{"match": match, "turns": turns}]}))
    return path


def bash(command: str, content: str = "", reasoning: str | None = None) -> dict:
    turn = {"content": content, "tool_calls": [{"name": "bash", "arguments": {"command": command}}]}
    return {**turn, "reasoning": reasoning} if reasoning else turn


def eval_workspace(root: Path, monkeypatch, *args: str) -> dict:
    monkeypatch.chdir(root)
    out = root / "result.json"
    result = CliRunner().invoke(app, ["eval", "--json", str(out), *args])
    assert result.exit_code == 0, result.output
    return json.loads(out.read_text())


def trial_files(data: dict) -> tuple[dict, Path]:
    trial_dir = Path(data["tasks"][0]["trial_dir"])
    return json.loads((trial_dir / "result.json").read_text()), trial_dir


def test_a_scripted_model_that_solves_a_real_task(tmp_path, scripts, monkeypatch):
    solve = (REGEX_LOG / "solution" / "solve.sh").read_text()
    script(scripts / "solve.json", "regex", [
        bash("cat /app/regex.txt 2>&1; ls /app", "Let me look around.", reasoning="Nothing there yet?"),
        bash(solve, "Writing the regex."),
        bash("seq 1 20000", "A long output, to see it shortened."),
        {"content": "The regex is in /app/regex.txt."},
    ])  # fmt: skip
    ws = workspace.init(tmp_path / "ws", str(REGEX_LOG), model="scripted/solve")
    data = eval_workspace(ws.root, monkeypatch)
    assert (data["score"], data["passed"], data["total"]) == (1.0, 1, 1)

    result, trial_dir = trial_files(data)
    assert result["agent_info"]["name"] == "autoagent"
    usage = result["agent_result"]
    assert usage["n_input_tokens"] > 0 and usage["n_output_tokens"] > 0 and usage["cost_usd"] > 0

    trajectory = trial_dir / "agent" / "trajectory.json"
    validator = TrajectoryValidator()
    assert validator.validate(trajectory), validator.get_errors()
    steps = json.loads(trajectory.read_text())["steps"]
    assert [s["source"] for s in steps] == ["system", "user", "agent", "agent", "agent", "agent"]
    assert steps[2]["reasoning_content"] == "Nothing there yet?"
    assert steps[2]["metrics"]["prompt_tokens"] > 0
    assert steps[3]["tool_calls"][0]["arguments"]["command"] == solve
    shortened = steps[4]["observation"]["results"][0]["content"]
    assert "characters cut; all of it is in /logs/agent/outputs/" in shortened
    saved = shortened.split("all of it is in /logs/agent/")[1].split(" ")[0]
    assert (trial_dir / "agent" / saved).read_text().count("\n") > 20000


def test_a_scripted_model_that_gives_up_scores_zero(tmp_path, scripts, monkeypatch):
    script(scripts / "quit.json", "regex", [{"content": "I cannot do this task."}])
    ws = workspace.init(tmp_path / "ws", str(REGEX_LOG), model="scripted/quit")
    data = eval_workspace(ws.root, monkeypatch)
    assert (data["score"], data["passed"], data["tasks"][0]["error"]) == (0.0, 0, None)
    result, trial_dir = trial_files(data)
    assert result["verifier_result"]["rewards"]["reward"] == 0.0
    assert TrajectoryValidator().validate(trial_dir / "agent" / "trajectory.json")


def test_the_harness_over_the_wire_retries_429s_and_records_usage(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-secret")
    answers = [
        {"content": "OK"},  # the pre-flight call of `eval`
        429, 429,
        {"content": "", "tool_calls": [{"name": "bash", "arguments": {"command": "echo 'Hello, AutoAgent!' > /app/greeting.txt"}}]},
        {"content": "Done."},
    ]  # fmt: skip
    with FakeOpenAI(answers) as server:
        ws = workspace.init(tmp_path / "ws", model="openai/fake-model")
        toml = ws.root / "autoagent.toml"
        toml.write_text(toml.read_text().replace('model = "openai/fake-model"\n',
                                                 f'model = "openai/fake-model"\napi_base = "{server.url}"\n'))
        data = eval_workspace(ws.root, monkeypatch, "-i", "hello-file")
    assert data["score"] == 1.0
    assert len(server.requests) == 5  # the pre-flight; two refused, then a tool call and a final answer
    assert server.requests[3]["tools"][0]["function"]["name"] == "bash"
    result, trial_dir = trial_files(data)
    usage = result["agent_result"]
    assert (usage["n_input_tokens"], usage["n_output_tokens"]) == (200, 40)
    assert usage["cost_usd"] is None  # a model without a price: unknown, not a crash
    steps = json.loads((trial_dir / "agent" / "trajectory.json").read_text())["steps"]
    assert steps[2]["metrics"]["extra"] == {"retries": 2}


def test_plain_harbor_runs_the_workspace_harness(tmp_path, scripts):
    script(scripts / "hello.json", "greeting", [
        bash("echo 'Hello, AutoAgent!' > /app/greeting.txt"), {"content": "Done."}
    ])  # fmt: skip
    ws = workspace.init(tmp_path / "ws", model="scripted/hello")
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "harbor"), "run", "-p", "tasks", "-i", "hello-file",
         "-a", "agent:AutoAgent", "-m", "scripted/hello", "-e", "autoagent.sandbox:Sandbox",
         "-o", "jobs", "--job-name", "plain", "-y", "-q"],
        cwd=ws.root, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HARBOR_TELEMETRY": "0", "PYTHONPATH": "."},  # agent.py importable
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    (result_path,) = (ws.root / "jobs" / "plain").glob("hello-file__*/result.json")
    result = json.loads(result_path.read_text())
    assert result["verifier_result"]["rewards"]["reward"] == 1.0
