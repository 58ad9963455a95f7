"""The brief speaks per task, as the ledger counts, however many attempts each task had."""

import re

from autoagent.ledger import Experiment
from autoagent.meta import brief

TASKS = ["csv-total", "hello-file", "word-count"]


def trial(tmp_path, task, attempt, reward, error=None, label="eval"):
    trial_dir = tmp_path / f"{task}__{attempt}"
    (trial_dir / "verifier").mkdir(parents=True)
    (trial_dir / "verifier" / "test-stdout.txt").write_text(f"{task} attempt {attempt}: reward {reward}\n")
    return {"task": task, "trial_name": trial_dir.name, "trial_dir": str(trial_dir), "reward": reward,
            "error": error, "label": label}  # fmt: skip


def render(best):
    return brief.render(experiment_id=1, program="Improve it.", harness="# agent\n", experiments=[best],
                        best=best, visible=TASKS)  # fmt: skip


def test_a_task_run_twice_appears_once_with_its_attempts(tmp_path):
    trials = [
        trial(tmp_path, "hello-file", 1, 1.0),
        trial(tmp_path, "csv-total", 1, 0.0, error="AgentTimeoutError: too slow"),
        trial(tmp_path, "word-count", 1, 1.0),
        trial(tmp_path, "hello-file", 2, 1.0),
        trial(tmp_path, "csv-total", 2, 0.0),
        trial(tmp_path, "word-count", 2, 0.0),
        trial(tmp_path, "held-out-task", 1, 0.0),  # not visible: never named
    ]
    best = Experiment(0, "baseline", description="baseline", trials=trials, passed=2, total=3,
                      task_scores={"hello-file": 1.0, "csv-total": 0.0, "word-count": 0.5, "held-out-task": 0.0})  # fmt: skip
    text = render(best)
    assert re.search(r"^# Experiment 1:", text)
    assert "passed 2/3 tasks" in text and "4/6" not in text  # as the ledger counts: most attempts pass
    results = text.split("## Results of the best harness (experiment 0)\n\n")[1].split("\n\n")[0]
    assert results.splitlines() == [
        "hello-file: passed, 2/2 attempts",
        "csv-total: failed, 0/2 attempts (AgentTimeoutError: too slow)",
        "word-count: passed, 1/2 attempts",
    ]
    failures = text.split("## Failures of the best harness")[1]
    assert failures.count("## csv-total") == 1 and "2/2 attempts failed" in failures
    assert "csv-total attempt 1" in failures and "csv-total attempt 2" not in failures  # the first failure
    assert failures.count("## word-count") == 1 and "1/2 attempts failed" in failures
    assert "hello-file" not in failures and "held-out-task" not in text


def test_a_smoke_run_is_not_an_attempt(tmp_path):
    trials = [trial(tmp_path, "hello-file", 0, 0.0, label="smoke"), trial(tmp_path, "hello-file", 1, 1.0)]
    best = Experiment(2, "keep", description="x", trials=trials, task_scores={"hello-file": 1.0})
    text = render(best)
    assert "passed 1/1 tasks" in text and "hello-file: passed, 1/1 attempts" in text
    assert "## Failures" not in text


def test_the_digests_stay_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr(brief, "DIGESTS", 2)
    trials = [trial(tmp_path, task, n, 0.0) for n in (1, 2) for task in TASKS]
    best = Experiment(0, "baseline", description="baseline", trials=trials)
    text = render(best)
    assert "passed 0/3 tasks" in text  # from the attempts when the ledger has no task scores
    failures = text.split("## Failures of the best harness")[1]
    assert failures.count("\n## ") == 2
    assert "(and 1 more tasks with failed attempts: word-count)" in failures


def test_the_failing_tasks_are_shared_out_most_failed_first(tmp_path):
    trials = [trial(tmp_path, "hello-file", 1, 1.0), trial(tmp_path, "hello-file", 2, 0.0),
              trial(tmp_path, "csv-total", 1, 0.0), trial(tmp_path, "csv-total", 2, 0.0),
              trial(tmp_path, "word-count", 1, 1.0), trial(tmp_path, "word-count", 2, 1.0),
              trial(tmp_path, "held-out-task", 1, 0.0)]  # fmt: skip
    best = Experiment(0, "baseline", trials=trials)
    failing = brief.failing(best, TASKS)
    assert failing == ["csv-total", "hello-file"]  # failed 2/2 before 1/2; passed and hidden ones not
    five = ["t1", "t2", "t3", "t4", "t5"]
    assert [brief.spread(five, 2, i) for i in range(2)] == [["t1", "t3", "t5"], ["t2", "t4"]]
    assert [brief.spread(failing, 3, i) for i in range(3)] == [["csv-total"], ["hello-file"], ["csv-total"]]
    assert brief.spread([], 3, 1) == []


def test_focus_and_the_other_proposals_are_sections_only_when_given(tmp_path, monkeypatch):
    monkeypatch.setattr(brief, "DIGESTS", 1)
    trials = [trial(tmp_path, task, 1, 0.0) for task in TASKS]
    best = Experiment(0, "baseline", description="baseline", trials=trials)
    plain = render(best)
    assert brief.render(experiment_id=1, program="Improve it.", harness="# agent\n", experiments=[best],
                        best=best, visible=TASKS, focus=[], others=[]) == plain  # fmt: skip
    assert "## Your focus" not in plain and "## Other proposals" not in plain
    assert plain.split("## Failures")[1].count("## csv-total") == 1  # the first that ran
    others = ["experiment 2 (proposing): focus on csv-total", "experiment 3 (evaluating): retry failed commands"]
    text = brief.render(experiment_id=4, program="Improve it.", harness="# agent\n", experiments=[best],
                        best=best, visible=TASKS, focus=["word-count", "held-out-task"], others=others)  # fmt: skip
    focus = text.split("## Your focus\n\n")[1].split("\n\n")[0]
    assert "Concentrate on: word-count." in focus and "held-out-task" not in text
    in_flight = text.split("## Other proposals in flight\n\n")[1].split("\n\n")[0]
    assert in_flight.splitlines()[1:] == [f"- {line}" for line in others]
    failures = text.split("## Failures")[1]
    assert "## word-count" in failures and "## csv-total" not in failures  # its focus is the one digested


def test_a_parent_that_is_not_the_best_is_what_the_brief_shows(tmp_path):
    """Proposed from the frontier: the harness, the results and the failures are the parent's,
    and the brief says it is not the best."""
    best = Experiment(1, "keep", description="re-read",
                      trials=[trial(tmp_path, t, 1, float(t != "word-count")) for t in TASKS])
    lone = Experiment(2, "discard", description="count words",
                      trials=[trial(tmp_path, t, 2, float(t == "word-count")) for t in TASKS])
    text = brief.render(experiment_id=3, program="Improve it.", harness="# the parent's agent\n",
                        experiments=[best, lone], best=best, visible=TASKS, parent=lone)  # fmt: skip
    assert "## The harness now: agent.py, your parent (experiment 2, passed 1/3 tasks). It is not the best " \
           "so far (experiment 1, passed 2/3 tasks)" in text
    results = text.split("## Results of the parent harness (experiment 2)\n\n")[1].split("\n\n")[0]
    assert results.splitlines()[2] == "word-count: passed, 1/1 attempts"
    failures = text.split("## Failures of the parent harness, in brief (experiment 2)")[1]
    assert "## csv-total" in failures and "## word-count" not in failures
    assert "read_trajectory(experiment='2'" in failures
    same = dict(experiment_id=3, program="Improve it.", harness="# agent\n", experiments=[best, lone], best=best,
                visible=TASKS)  # fmt: skip
    assert brief.render(**same, parent=best) == brief.render(**same)  # the best as parent: the usual brief
