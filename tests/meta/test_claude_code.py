"""Claude Code as the meta-agent, offline: the real CLI (bundled with claude-agent-sdk)
against a fake Anthropic server whose scripted replies drive it."""

import asyncio
import json
import subprocess
import sys

import pytest

from autoagent import spend, workspace
from autoagent.ledger import Ledger
from autoagent.loop import Loop, Settings
from autoagent.meta import claude_code
from autoagent.meta.agent import Limits, MetaAgentError
from autoagent.meta.tools import MetaTools
from autoagent.strategies.budget import Budget
from tests.fake_anthropic import FakeAnthropic

PROMPT_OLD = "When the task is complete, reply with a short summary and no tool call."
PROMPT_NEW = "Before you finish, re-read the instruction and check every requirement.\n" + PROMPT_OLD
MAIN = "meta-agent of AutoAgent"  # only our meta-agent's system prompt says this


def use(tool: str, **arguments) -> list[dict]:
    return [{"tool": tool, "input": arguments}]


SUBMIT = use("mcp__autoagent__submit", description="Re-read the instruction before finishing",
             hypothesis="The agent ignores a condition of the instruction.", expected_flips=["csv-total"],
             overfitting="Yes: any task with several requirements benefits.")  # fmt: skip


@pytest.fixture(autouse=True)
def claude_home(tmp_path, monkeypatch):
    """Claude Code's own files (sessions, settings) in the test's directory, not in ~/.claude."""
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "claude-home"))
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-not-a-secret")


@pytest.mark.usefixtures("needs_sandbox")
def test_claude_code_proposes_and_the_loop_decides(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    harness = str(ws.root / ".autoagent" / "worktrees" / "1" / "agent.py")  # the candidate's, its cwd
    answers = [
        use("mcp__autoagent__read_trajectory", experiment="0", task="csv-total"),
        use("Read", file_path=str(ws.harness)),
        use("Edit", file_path=str(ws.harness), old_string=PROMPT_OLD, new_string=PROMPT_NEW),  # the best's
        use("Read", file_path=harness),
        use("Edit", file_path=harness, old_string=PROMPT_OLD, new_string=PROMPT_NEW),
        use("mcp__autoagent__spot_check", tasks=["csv-total"]),
        SUBMIT,
        [{"text": "Submitted."}],
    ]
    with FakeAnthropic(answers, main_marker=MAIN) as fake:
        settings = Settings.from_workspace(
            ws, meta_model="anthropic/claude-sonnet-4-5", meta_api_base=fake.url,
            meta_backend="claude-code", budget=Budget(iterations=1),
        )  # fmt: skip
        asyncio.run(Loop(ws, settings, report=lambda line: None).run())
    experiments = Ledger(ws.root).experiments()
    assert [e.status for e in experiments] == ["baseline", "keep"]
    kept = experiments[1]
    assert kept.description == "Re-read the instruction before finishing"
    assert kept.expected_flips == ["csv-total"] and kept.flips["fixed"] == ["csv-total"]
    assert kept.cost_usd["meta"] > 0  # Claude Code's own cost, counted against the meta budget
    assert PROMPT_NEW in ws.harness.read_text()
    log = json.loads(open(kept.meta_log).read())
    assert log["backend"] == "claude-code" and any(m.get("type") == "ResultMessage" for m in log["messages"])
    # Our MCP tools answered inside the conversation: the trajectory it read, the edited
    # harness's spot check (it fixes csv-total).
    sent = json.dumps([r["body"] for r in fake.requests])
    assert "steps 1-" in sent and "csv-total: reward 1" in sent
    assert f"refused: {ws.harness} is the best harness's copy; edit the candidate's: {harness}" in sent
    main = [r["body"] for r in fake.requests if r["body"] and MAIN in json.dumps(r["body"].get("system"))]
    assert main and {body["model"] for body in main} == {"claude-sonnet-4-5"}  # the [meta] model


def test_edits_outside_the_allowed_files_are_refused(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    outside = tmp_path / "outside.txt"
    program = (ws.root / "program.md").read_text()
    answers = [
        use("Write", file_path=str(outside), content="escaped"),
        use("Read", file_path=str(ws.root / "program.md")),
        use("Edit", file_path=str(ws.root / "program.md"), old_string="# Directive", new_string="# Mine"),
        use("Read", file_path=str(ws.harness)),
        use("Edit", file_path=str(ws.harness), old_string='return "autoagent"', new_string='return "x"'),
        use("Read", file_path=str(ws.root / "autoagent.toml")),
        use("Read", file_path=str(ws.tasks_dir / "word-count" / "instruction.md")),  # held out
        use("Read", file_path=str(ws.tasks_dir / "csv-total" / "tests" / "test.sh")),
        SUBMIT,
        [{"text": "Done."}],
    ]
    tools = MetaTools(ws.root, Ledger(ws.root), ["csv-total", "hello-file"], ws.harness.read_text(),
                      tasks_dir=ws.tasks_dir, off_limits=["word-count"])  # fmt: skip
    with FakeAnthropic(answers, main_marker=MAIN) as fake:
        asyncio.run(claude_code.propose(tools, "# Experiment 1: brief", model="claude-sonnet-4-5",
                                        api_base=fake.url, limits=Limits(turns=20)))  # fmt: skip
    assert not outside.exists()
    assert (ws.root / "program.md").read_text() == program
    assert 'return "autoagent"' in ws.harness.read_text()
    denials = [r for r in json.dumps([r["body"] for r in fake.requests]).split("refused: ")[1:]]
    reasons = " ".join(d[:160] for d in denials)
    assert "outside the workspace" in reasons
    assert "only agent.py and files under .agent/ may be changed" in reasons
    assert "byte-identical" in reasons
    assert "autoagent.toml is not readable" in reasons
    assert "no such task you can see" in reasons
    assert "tests and solution are the verifier's" in reasons
    # The one allowed read came back; none of the refused files' contents did.
    sent = json.dumps([r["body"] for r in fake.requests])
    held_out = (ws.tasks_dir / "word-count" / "instruction.md").read_text().strip()
    assert "FIXED ADAPTER BOUNDARY" in sent and "[decision]" not in sent and held_out[:60] not in sent


def test_without_a_submission_the_proposal_fails(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    tools = MetaTools(ws.root, Ledger(ws.root), ["hello-file"], ws.harness.read_text())
    with FakeAnthropic([[{"text": "I would rather not."}]], main_marker=MAIN) as fake:
        with pytest.raises(MetaAgentError, match="without calling submit"):
            asyncio.run(claude_code.propose(tools, "brief", model="claude-sonnet-4-5", api_base=fake.url))


def test_without_the_extra_it_says_how_to_install(tmp_path):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    script = ("import sys; sys.modules['claude_agent_sdk'] = None\n"  # as if the extra were not installed
              "from autoagent.cli import app\napp(['run', '--meta', 'claude-code'])")  # fmt: skip
    completed = subprocess.run([sys.executable, "-c", script], cwd=ws.root, capture_output=True, text=True)
    assert completed.returncode == 2
    assert "pip install 'autoagent[claude]'" in " ".join((completed.stdout + completed.stderr).split())


def test_a_claude_code_that_cannot_sign_in_fails_with_its_reason(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    tools = MetaTools(ws.root, Ledger(ws.root), ["hello-file"], ws.harness.read_text())
    log = tmp_path / "meta.json"
    with FakeAnthropic([SUBMIT], main_marker=MAIN) as fake:
        with pytest.raises(MetaAgentError, match=r"Claude Code .*login"):  # "... Not logged in · Please run /login"
            asyncio.run(claude_code.propose(tools, "brief", model="claude-sonnet-4-5", api_base=fake.url, log=log))
    assert json.loads(log.read_text())["messages"]  # the session log is kept for the failure too


def test_a_session_cut_short_by_the_time_limit_still_counts_its_cost(tmp_path, monkeypatch):
    spend_file = tmp_path / "spend.jsonl"
    monkeypatch.setenv(spend.FILE_ENV, str(spend_file))
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    tools = MetaTools(ws.root, Ledger(ws.root), ["hello-file"], ws.harness.read_text())
    answers = [use("Read", file_path=str(ws.harness)), [{"wait": 60}]]  # the second reply never comes in time
    with FakeAnthropic(answers, main_marker=MAIN) as fake:
        with pytest.raises(MetaAgentError, match="no submission within 10 s"):
            asyncio.run(claude_code.propose(tools, "brief", model="claude-sonnet-4-5", api_base=fake.url,
                                            limits=Limits(seconds=10)))  # fmt: skip
    [entry] = spend.Meter(spend_file).entries()
    assert entry["role"] == "meta" and entry["cost_usd"] > 0 and entry["input_tokens"] >= 1000
