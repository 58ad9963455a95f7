"""The meta-agent's tools refuse what breaks the rules, with a reason, and change nothing."""

import json
import os

import pytest

from autoagent import workspace
from autoagent.ledger import Experiment, Ledger
from autoagent.meta.tools import MetaTools

TASKS = ["csv-total", "hello-file", "word-count"]


@pytest.fixture
def tools(tmp_path):
    ws = workspace.init(tmp_path / "ws")
    ledger = Ledger(ws.root)
    return MetaTools(ws.root, ledger, TASKS, ws.harness.read_text())


async def call(tools, name, **arguments):
    return await tools.call(name, arguments)


async def test_editing_below_the_boundary_is_refused(tools):
    before = (tools.root / "agent.py").read_text()
    result = await call(tools, "edit_file", path="agent.py", old_text='return "autoagent"', new_text='return "x"')
    assert result.startswith("refused:") and "byte-identical" in result
    rewritten = await call(tools, "write_file", path="agent.py", content="print('hi')\n")
    assert rewritten.startswith("refused:") and "FIXED ADAPTER BOUNDARY" in rewritten
    assert (tools.root / "agent.py").read_text() == before


@pytest.mark.parametrize("path", ["../x", "/tmp/x", "tasks/../../x", "tasks/hello-file/instruction.md",
                                  "program.md", "autoagent.toml", ".git/config"])  # fmt: skip
async def test_writes_outside_the_harness_are_refused(tools, path, tmp_path):
    result = await call(tools, "write_file", path=path, content="x")
    assert result.startswith("refused:"), result
    assert not (tmp_path / "x").exists() and not os.path.exists("/tmp/x")


async def test_symlinks_are_not_followed(tools, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tools.root / ".agent" / "link").symlink_to(outside)
    result = await call(tools, "write_file", path=".agent/link/x.md", content="x")
    assert result.startswith("refused:") and "symlink" in result
    assert not (outside / "x.md").exists()
    assert (await call(tools, "read_file", path=".agent/link/x.md")).startswith("refused:")


async def test_naming_a_task_is_refused(tools):
    result = await call(tools, "edit_file", path="agent.py", old_text="MAX_TURNS = 30",
                        new_text="MAX_TURNS = 30  # csv-total needs more")  # fmt: skip
    assert result.startswith("refused:") and "names the task 'csv-total'" in result
    note = await call(tools, "write_file", path=".agent/tips.md", content="Read /tests first.")
    assert note.startswith("refused:") and "verifier" in note


async def test_allowed_edits_work_and_submit_checks_its_arguments(tools):
    assert await call(tools, "edit_file", path="agent.py", old_text="MAX_TURNS = 30", new_text="MAX_TURNS = 20") == "edited agent.py"
    assert "MAX_TURNS = 20" in (tools.root / "agent.py").read_text()
    assert (await call(tools, "write_file", path=".agent/skills/check.md", content="Check your work.")).startswith("wrote")
    unknown = await call(tools, "submit", description="d", hypothesis="h", expected_flips=["nope"], overfitting="yes")
    assert unknown.startswith("refused:") and "nope" in unknown
    assert await call(tools, "submit", description="d", hypothesis="h", expected_flips=["csv-total"], overfitting="yes") == "submitted"
    assert tools.submission.expected_flips == ["csv-total"]


async def test_reading_traces_of_an_experiment(tools, tmp_path):
    trial = tmp_path / "trial"
    (trial / "agent").mkdir(parents=True)
    (trial / "verifier").mkdir()
    (trial / "verifier" / "test-stdout.txt").write_text("AssertionError: expected 21\n")
    (trial / "agent" / "trajectory.json").write_text(json.dumps({"steps": [
        {"step_id": 1, "source": "user", "message": "count the words"},
        {"step_id": 2, "source": "agent", "message": "", "reasoning_content": "use wc",
         "tool_calls": [{"tool_call_id": "c1", "function_name": "bash", "arguments": {"command": "wc -w"}}],
         "observation": {"results": [{"source_call_id": "c1", "content": "exit code: 0\nstdout:\n20"}]}},
    ]}))  # fmt: skip
    record = {"task": "word-count", "trial_name": "t", "trial_dir": str(trial), "reward": 0.0}
    tools.ledger.save(Experiment(0, "baseline", trials=[record], task_scores={"word-count": 0.0}))
    steps = await call(tools, "read_trajectory", experiment="0", task="word-count", start_step=2)
    assert "reasoning: use wc" in steps and '> bash({"command": "wc -w"})' in steps and "20" in steps
    assert "expected 21" in await call(tools, "read_verifier_output", experiment="0", task="word-count")
    assert "expected 21" in await call(tools, "search_traces", pattern="expected \\d+")
    assert "word-count: reward 0" in await call(tools, "experiment_results", experiment="0")
    assert (await call(tools, "read_trajectory", experiment="7", task="word-count")).startswith("refused:")
    assert (await call(tools, "frobnicate")).startswith("error: there is no tool")
