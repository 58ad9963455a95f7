import subprocess

import pytest
from typer.testing import CliRunner

from autoagent import workspace
from autoagent.cli import app
from autoagent.guard import BOUNDARY, import_problem
from autoagent.workspace import Workspace, WorkspaceError
from tests.conftest import REAL_TASKS, flat


def test_init_scaffolds_and_commits_a_baseline(tmp_path):
    result = CliRunner().invoke(app, ["init", str(tmp_path / "ws"), "-m", "openai/gpt-5"])
    assert result.exit_code == 0, result.output
    root = tmp_path / "ws"
    for name in ("agent.py", "program.md", "autoagent.toml", ".gitignore", ".agent/README.md"):
        assert (root / name).is_file(), name
    assert sorted(p.name for p in (root / "tasks").iterdir()) == ["csv-total", "hello-file", "word-count"]
    ws = Workspace.find(root / "tasks")
    assert ws.root == root and ws.config.agent.model == "openai/gpt-5"
    log = subprocess.run(["git", "log", "--format=%s"], cwd=root, capture_output=True, text=True)
    assert log.stdout.strip() == "AutoAgent baseline"
    status = subprocess.run(["git", "status", "--porcelain"], cwd=root, capture_output=True, text=True)
    assert status.stdout == ""
    assert BOUNDARY in (root / "agent.py").read_text()
    assert "if this exact task disappeared" in (root / "program.md").read_text()


def test_init_refuses_to_overwrite_unless_forced(tmp_path):
    workspace.init(tmp_path / "ws")
    (tmp_path / "ws" / "agent.py").write_text("# my work\n")
    result = CliRunner().invoke(app, ["init", str(tmp_path / "ws")])
    assert result.exit_code == 2
    assert "already holds" in flat(result.output) and "--force" in result.output
    assert (tmp_path / "ws" / "agent.py").read_text() == "# my work\n"
    workspace.init(tmp_path / "ws", force=True)
    assert BOUNDARY in (tmp_path / "ws" / "agent.py").read_text()


def test_init_keeps_tasks_already_in_the_directory(tmp_path):
    mine = tmp_path / "proj" / "tasks"
    (mine / "my-task").mkdir(parents=True)
    (mine / "my-task" / "task.toml").write_text("# mine\n")
    result = CliRunner().invoke(app, ["init", str(tmp_path / "proj")])  # would put the examples there
    assert result.exit_code == 2 and "tasks" in flat(result.output)
    assert [p.name for p in mine.iterdir()] == ["my-task"]
    ws = workspace.init(tmp_path / "proj", str(mine))  # used where they are
    assert ws.tasks_dir == mine and (mine / "my-task" / "task.toml").read_text() == "# mine\n"


def test_init_copies_one_task_or_links_a_directory(tmp_path):
    one = workspace.init(tmp_path / "one", str(REAL_TASKS / "terminal-bench-2" / "regex-log"))
    assert [p.name for p in one.tasks_dir.iterdir()] == ["regex-log"]
    linked = workspace.init(tmp_path / "linked", str(REAL_TASKS / "terminal-bench-2"), link=True)
    assert linked.tasks_dir == (REAL_TASKS / "terminal-bench-2").resolve()
    with pytest.raises(WorkspaceError, match="no such directory"):
        workspace.init(tmp_path / "bad", str(tmp_path / "missing-tasks"))


def test_a_harness_with_a_syntax_error_is_named_with_its_line(tmp_path):
    ws = workspace.init(tmp_path / "ws")
    text = ws.harness.read_text().replace("MAX_TURNS = 30", "MAX_TURNS = = 30")
    ws.harness.write_text(text)
    line = text.splitlines().index("MAX_TURNS = = 30") + 1
    problem = import_problem(ws.harness)
    assert problem.startswith(f"{ws.harness}, line {line}: invalid syntax")


def test_a_harness_that_fails_at_import_says_why(tmp_path):
    ws = workspace.init(tmp_path / "ws")
    ws.harness.write_text(ws.harness.read_text().replace("MAX_TURNS = 30", "MAX_TURNS = undefined_name"))
    problem = import_problem(ws.harness)
    assert "does not import: NameError: name 'undefined_name' is not defined" in problem
    assert "line" in problem
    ws.harness.write_text(ws.harness.read_text().replace("class AutoAgent(", "class Renamed("))
    ws.harness.write_text(ws.harness.read_text().replace("MAX_TURNS = undefined_name", "MAX_TURNS = 30"))
    assert "defines no class AutoAgent" in import_problem(ws.harness)


def test_eval_in_a_workspace_reports_bad_settings_and_harness(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws")
    monkeypatch.chdir(ws.root)
    toml = ws.root / "autoagent.toml"
    original = toml.read_text()
    toml.write_text(original + "\n[extras]\nfoo = 1\n")
    result = CliRunner().invoke(app, ["eval"])
    assert result.exit_code == 2 and "unknown setting extras" in flat(result.output)
    toml.write_text(original)
    broken = ws.harness.read_text().replace("MAX_TURNS = 30", "MAX_TURNS = (30")
    ws.harness.write_text(broken)
    line = broken.splitlines().index("MAX_TURNS = (30") + 1
    result = CliRunner().invoke(app, ["eval"])
    assert result.exit_code == 1
    assert f"agent.py, line {line}: '(' was never closed" in flat(result.output)
