"""Pre-flight: a command that cannot reach its model stops within seconds, naming the
setting or variable to fix, before any trial or proposal; a USD budget that cannot be
counted stops at start-up; a keyless scripted workspace knows its meta-agent."""

import json
import socket
import time

import pytest
from typer.testing import CliRunner

from autoagent import workspace
from autoagent.cli import app
from autoagent.ledger import Ledger
from tests.conftest import flat
from tests.fake_openai import FakeOpenAI


def invoke(root, monkeypatch, *args):
    monkeypatch.chdir(root)
    started = time.monotonic()
    result = CliRunner().invoke(app, list(args))
    assert "Traceback" not in result.output
    return result, flat(result.output), time.monotonic() - started


def set_agent(ws, **settings):
    """Replace [agent] model = ... with these settings."""
    lines = "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())
    toml = ws.root / "autoagent.toml"
    toml.write_text(toml.read_text().replace('model = "anthropic/claude-sonnet-4-5"\n', lines, 1))


@pytest.mark.parametrize("command", [["eval"], ["run", "--iterations", "1", "--plain"]])
def test_a_missing_key_stops_eval_and_run_within_seconds(tmp_path, monkeypatch, command):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    ws = workspace.init(tmp_path / "ws")  # the default model, anthropic/claude-sonnet-4-5
    result, output, elapsed = invoke(ws.root, monkeypatch, *command)
    assert result.exit_code == 1, output
    assert "ANTHROPIC_API_KEY is not set" in output and "[agent] model" in output
    assert elapsed < 10  # not 4.5 minutes of retries per trial
    assert not Ledger(ws.root).experiments()  # no trial ran, no baseline recorded


def test_a_wrong_key_stops_run_before_the_baseline(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    ws = workspace.init(tmp_path / "ws")
    with FakeOpenAI([(401, "Incorrect API key provided")] * 3) as server:
        set_agent(ws, model="openai/fake-model", api_base=server.url)
        result, output, _ = invoke(ws.root, monkeypatch, "run", "--iterations", "1", "--plain")
    assert result.exit_code == 1 and "Check the key in OPENAI_API_KEY" in output
    assert len(server.requests) == 1  # one test call, not retried
    assert not Ledger(ws.root).experiments()


def test_an_endpoint_that_does_not_answer_names_api_base(tmp_path, monkeypatch):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    ws = workspace.init(tmp_path / "ws")
    set_agent(ws, model="openai/local-model", api_base=f"http://127.0.0.1:{port}/v1")
    result, output, elapsed = invoke(ws.root, monkeypatch, "eval")
    assert result.exit_code == 1 and "Check [agent] api_base" in output, output
    assert elapsed < 10


def test_a_usd_budget_with_an_unpriced_model_stops_at_start_up(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws")
    set_agent(ws, model="openai/local-model", api_base="http://127.0.0.1:9/v1")
    result, output, _ = invoke(ws.root, monkeypatch, "run", "--budget-usd", "5", "--plain")
    assert result.exit_code == 2
    assert "LiteLLM has no price for openai/local-model ([agent] model)" in output
    assert "input_usd_per_mtok" in output and not Ledger(ws.root).experiments()


def test_a_configured_price_lets_the_budget_start(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws")
    with FakeOpenAI([{"content": "OK"}]) as server:
        set_agent(ws, model="openai/local-model", api_base=server.url, input_usd_per_mtok=1.0,
                  output_usd_per_mtok=2.0)  # fmt: skip
        toml = ws.root / "autoagent.toml"  # no task left: the run stops right after the model checks
        toml.write_text(toml.read_text().replace("include = []", 'include = ["no-such-task"]'))
        result, output, _ = invoke(ws.root, monkeypatch, "run", "--budget-usd", "5", "--plain")
    assert "no price" not in output and len(server.requests) == 1  # past the budget check, the test call made
    assert result.exit_code == 1 and "leaves no tasks" in output


def test_a_scripted_workspace_proposes_with_the_scripted_meta_agent(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    assert ws.config.meta.model == "scripted/demo-meta"
    old = workspace.init(tmp_path / "old", model="scripted/examples")  # as `init` wrote it before
    text = (old.root / "autoagent.toml").read_text().replace('model = "scripted/demo-meta"', "")
    (old.root / "autoagent.toml").write_text(text)
    result, output, _ = invoke(old.root, monkeypatch, "run", "--iterations", "1", "--plain")
    assert result.exit_code == 2 and "scripted/examples has no script for proposing" in output
    assert 'Set [meta] model = "scripted/demo-meta"' in output


def test_init_warns_when_the_key_is_missing(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    result, output, _ = invoke(tmp_path, monkeypatch, "init", "ws", "-m", "openai/gpt-4o")
    assert result.exit_code == 0 and "Warning: OPENAI_API_KEY is not set" in output
    assert "set [agent] api_base in autoagent.toml" in output
    result, output, _ = invoke(tmp_path, monkeypatch, "init", "ws2", "-m", "scripted/examples")
    assert "Warning" not in output
