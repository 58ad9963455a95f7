"""The README's quick start, as written: init with the bundled scripted model, then eval."""

import json

import pytest
from typer.testing import CliRunner

from autoagent.cli import app

pytestmark = pytest.mark.usefixtures("needs_sandbox")


def test_init_then_eval_with_the_bundled_scripted_model(tmp_path, monkeypatch):
    runner = CliRunner()
    created = runner.invoke(app, ["init", str(tmp_path / "my-agent"), "-m", "scripted/examples"])
    assert created.exit_code == 0, created.output
    monkeypatch.chdir(tmp_path / "my-agent")
    evaluated = runner.invoke(app, ["eval", "--json", "result.json"])
    assert evaluated.exit_code == 0, evaluated.output
    data = json.loads((tmp_path / "my-agent" / "result.json").read_text())
    # The script misreads csv-total unless the system prompt says to re-read the instruction.
    assert {t["name"]: t["reward"] for t in data["tasks"]} == {
        "csv-total": 0.0, "hello-file": 1.0, "word-count": 1.0,
    }  # fmt: skip


def test_a_keyless_workspace_runs_the_loop_offline(tmp_path, monkeypatch):
    """`init -m scripted/...` as the README shows, then `run`: its meta-agent is the scripted
    meta-agent of the demo, so it proposes (not the task agent's script, which cannot)."""
    from autoagent.ledger import Ledger

    runner = CliRunner()
    assert runner.invoke(app, ["init", str(tmp_path / "try"), "-m", "scripted/examples"]).exit_code == 0
    monkeypatch.chdir(tmp_path / "try")
    ran = runner.invoke(app, ["run", "--iterations", "1", "--plain"])
    assert ran.exit_code == 0, ran.output
    assert "the meta-agent (scripted/demo-meta) is proposing" in ran.output
    assert [e.status for e in Ledger(tmp_path / "try").experiments()] == ["baseline", "keep"]
