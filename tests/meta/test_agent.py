import time

import pytest

from autoagent import llm, workspace
from autoagent.faults import ModelConfigurationError
from autoagent.ledger import Ledger
from autoagent.meta.agent import Limits, MetaAgentError, propose
from autoagent.meta.tools import MetaTools
from tests.fake_openai import FakeOpenAI


@pytest.fixture
def tools(tmp_path):
    ws = workspace.init(tmp_path / "ws")
    return MetaTools(ws.root, Ledger(ws.root), ["hello-file"], ws.harness.read_text())


async def test_a_provider_that_stays_down_is_a_meta_agent_error(tools, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    limits = Limits(backoff=llm.Backoff(attempts=3, base_sec=0.01))
    with FakeOpenAI([500] * 5) as server:
        with pytest.raises(MetaAgentError, match="the model call failed: ModelUnavailableError"):
            await propose(tools, "brief", model="openai/fake", api_base=server.url, limits=limits,
                          log=tmp_path / "log.json")  # fmt: skip
    assert len(server.requests) == 3
    assert (tmp_path / "log.json").is_file()


async def test_a_proposal_over_the_wire(tools, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    answers = [
        {"content": "", "tool_calls": [{"name": "edit_file", "arguments": {
            "path": "agent.py", "old_text": "MAX_TURNS = 30", "new_text": "MAX_TURNS = 25"}}]},
        {"content": "Done editing."},  # no tool call: nudged to go on
        {"content": "", "tool_calls": [{"name": "submit", "arguments": {
            "description": "fewer turns", "hypothesis": "h", "expected_flips": [], "overfitting": "yes"}}]},
    ]  # fmt: skip
    with FakeOpenAI(answers) as server:
        proposal = await propose(tools, "brief", model="openai/fake", api_base=server.url)
    assert proposal.submission.description == "fewer turns" and proposal.turns == 3
    assert server.requests[2]["messages"][-1]["content"].startswith("Continue with the tools")
    assert "MAX_TURNS = 25" in (tools.root / "agent.py").read_text()
    assert {t["function"]["name"] for t in server.requests[0]["tools"]} >= {"submit", "read_trajectory"}


async def test_a_proposal_whose_model_hangs_stops_at_its_time_limit(tools, tmp_path, monkeypatch):
    """[meta] max_minutes holds for the whole proposal, not only between turns."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    started = time.monotonic()
    with FakeOpenAI(["hang"]) as server:
        with pytest.raises(MetaAgentError, match="no submission within 1 s"):
            await propose(tools, "brief", model="openai/fake", api_base=server.url, limits=Limits(seconds=1.0),
                          log=tmp_path / "log.json")  # fmt: skip
    assert time.monotonic() - started < 10 and len(server.requests) == 1
    assert (tmp_path / "log.json").is_file()


async def test_a_wrong_key_stops_the_run_rather_than_failing_one_proposal(tools, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
    with FakeOpenAI([(401, "Incorrect API key provided")]) as server:
        with pytest.raises(ModelConfigurationError, match=r"OPENAI_API_KEY.*retrying cannot help"):
            await propose(tools, "brief", model="openai/fake", api_base=server.url)
    assert len(server.requests) == 1
