"""`autoagent doctor`: one command that says whether this machine can run the loop, and how to fix it."""

from typer.testing import CliRunner

from autoagent import doctor, workspace
from autoagent.cli import app
from tests.conftest import flat, write_task


def test_a_ready_machine(tmp_path, monkeypatch, needs_sandbox, sandbox_state):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    monkeypatch.chdir(ws.root)
    result = CliRunner().invoke(app, ["doctor"])
    output = flat(result.output)
    assert result.exit_code == 0, output
    for line in ("the sandbox starts and runs a command │ yes", "git version", "scripted (offline, not a real model)"):
        assert line in output
    assert output.endswith("Ready.")
    assert not any((sandbox_state / "doctor").iterdir())  # the probe's sandbox is gone


def test_a_missing_key_is_named(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    checks = doctor.model_checks({"task agent": "anthropic/claude-sonnet-4-5"}, {})
    assert not checks[0].ok
    assert "ANTHROPIC_API_KEY not set" in checks[0].detail and checks[0].fix == "export ANTHROPIC_API_KEY=..."
    local = doctor.model_checks({"task agent": "openai/my-model"}, {"task agent": "http://127.0.0.1:8000/v1"})
    assert local[0].ok  # a local endpoint needs no key


def test_libreoffice_is_checked_only_where_tasks_need_it(tmp_path, monkeypatch):
    tasks = tmp_path / "tasks"
    write_task(tasks, "plain", test="echo 1 > /logs/verifier/reward.txt")
    assert doctor.libreoffice_check(tasks) == []
    write_task(tasks, "sheet", test="soffice --headless --convert-to xlsx x.xlsx\necho 1 > /logs/verifier/reward.txt")
    monkeypatch.setenv("PATH", str(tmp_path))  # no soffice here
    [check] = doctor.libreoffice_check(tasks)
    assert not check.ok and "sheet" in check.name and "libreoffice-calc" in check.fix
