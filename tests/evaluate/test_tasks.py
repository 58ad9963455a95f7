from pathlib import Path

import pytest

from autoagent.evaluate.tasks import discover, problem_with, select
from tests.conftest import EXAMPLE_TASKS, write_task


def test_bundled_examples_are_all_valid():
    tasks = discover(EXAMPLE_TASKS)
    assert [t.name for t in tasks] == ["csv-total", "hello-file", "word-count"]
    assert all(t.valid for t in tasks)


def test_a_single_task_dir_is_a_dataset_of_one():
    tasks = discover(EXAMPLE_TASKS / "hello-file")
    assert [t.name for t in tasks] == ["hello-file"]


def test_broken_tasks_are_named_with_their_problem(tmp_path):
    write_task(tmp_path, "fine", test="echo 1 > /logs/verifier/reward.txt")
    write_task(tmp_path, "bad-toml", test="true", toml="[verifier\ntimeout_sec = 60\n")
    write_task(tmp_path, "bad-type", test="true", toml='[verifier]\ntimeout_sec = "soon"\n')
    write_task(tmp_path, "no-test", test=None)
    (tmp_path / "not-a-task").mkdir()  # ignored: nothing task-like inside
    (tmp_path / "README.md").write_text("ignored")
    problems = {t.name: t.problem for t in discover(tmp_path)}
    assert problems.keys() == {"fine", "bad-toml", "bad-type", "no-test"}
    assert problems["fine"] is None
    assert "not valid TOML" in problems["bad-toml"] and "line 1" in problems["bad-toml"]
    assert "verifier.timeout_sec" in problems["bad-type"]
    assert "does not contain tests/test.sh" in problems["no-test"]


def test_select_filters_by_globs_then_limits():
    tasks = discover(EXAMPLE_TASKS)
    assert [t.name for t in select(tasks, include=["*-file", "word*"])] == ["hello-file", "word-count"]
    assert [t.name for t in select(tasks, exclude=["csv-*"], limit=1)] == ["hello-file"]


def test_a_missing_directory_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="is not a directory of Harbor tasks"):
        discover(Path(tmp_path / "nope"))


def test_problems_name_the_task_not_its_full_path_even_given_a_relative_one(tmp_path, monkeypatch):
    write_task(tmp_path, "no-test", test=None)
    monkeypatch.chdir(tmp_path)
    problem = problem_with(Path("no-test"))
    assert "does not contain tests/test.sh" in problem
    assert str(tmp_path) not in problem
