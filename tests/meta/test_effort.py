"""The meta-agent sees what each trial cost: turns, tokens, agent time and USD (unknown said so),
in the brief's per-task lines, experiment_results and read_trajectory; and when every task
passes, the brief says so and makes cost the objective."""

import json

from autoagent import workspace
from autoagent.ledger import Experiment, Ledger
from autoagent.meta import brief
from autoagent.meta.tools import MetaTools

TASKS = ["hello-file", "word-count"]


def trial(tmp_path, task, attempt, reward, turns, tokens, seconds, usd):
    trial_dir = tmp_path / f"{task}__{attempt}"
    (trial_dir / "agent").mkdir(parents=True, exist_ok=True)
    (trial_dir / "agent" / "trajectory.json").write_text(json.dumps({"steps": [
        {"step_id": 1, "source": "user", "message": "do it"},
        {"step_id": 2, "source": "agent", "message": "done"},
    ]}))  # fmt: skip
    return {"task": task, "trial_name": trial_dir.name, "trial_dir": str(trial_dir), "reward": reward,
            "turns": turns, "input_tokens": tokens, "cached_tokens": tokens // 4, "output_tokens": tokens // 10,
            "agent_seconds": seconds, "cost_usd": usd, "label": "eval"}  # fmt: skip


def experiment(tmp_path, rewards=(1.0, 0.0)):
    trials = [
        trial(tmp_path, "hello-file", 1, rewards[0], 3, 1200, 4.0, 0.0021),
        trial(tmp_path, "hello-file", 2, rewards[0], 5, 2000, 6.0, 0.0031),
        trial(tmp_path, "word-count", 1, rewards[1], 7, 5000, 12.5, None),  # a model without a price
    ]
    scores = {"hello-file": rewards[0], "word-count": rewards[1]}
    best = Experiment(0, "baseline", description="baseline", trials=trials, task_scores=scores,
                      passed=sum(r >= 1 for r in rewards), total=2)  # fmt: skip
    best.effort = {"measure": "tokens", "tokens": 3610.0, "turns": 5.5}  # as the loop records it
    return best


def render(best, objective="score-then-cost"):
    return brief.render(experiment_id=1, program="Improve it.", harness="# agent\n", experiments=[best],
                        best=best, visible=TASKS, objective=objective)  # fmt: skip


def test_the_brief_shows_each_tasks_turns_tokens_time_and_cost(tmp_path):
    text = render(experiment(tmp_path))
    results = text.split("## Results of the best harness (experiment 0)\n\n")[1].split("\n\n")[0]
    assert results.splitlines() == [
        "hello-file: passed, 2/2 attempts · mean 4 turns, 1,600 in (400 cached) / 160 out tokens, "
        "agent 5.0 s, $0.0026",
        "word-count: failed, 0/1 attempts · 7 turns, 5,000 in (1,250 cached) / 500 out tokens, "
        "agent 12.5 s, USD unknown",
    ]
    assert "## Every task passes" not in text


async def test_experiment_results_and_read_trajectory_show_each_trials_effort(tmp_path):
    ws = workspace.init(tmp_path / "ws")
    tools = MetaTools(ws.root, Ledger(ws.root), TASKS, ws.harness.read_text())
    tools.ledger.save(experiment(tmp_path))
    results = await tools.call("experiment_results", {"experiment": "0"})
    assert "hello-file: reward 1 · 3 turns, 1,200 in (300 cached) / 120 out tokens, agent 4.0 s, $0.0021" in results
    assert "hello-file: reward 1 · 5 turns, 2,000 in (500 cached) / 200 out tokens, agent 6.0 s, $0.0031" in results
    assert "word-count: reward 0 · 7 turns, 5,000 in (1,250 cached) / 500 out tokens, agent 12.5 s, USD unknown" in results
    assert "cost per task (tokens): 3,610 tokens" in results
    steps = await tools.call("read_trajectory", {"experiment": "0", "task": "word-count"})
    assert steps.startswith("(this trial: 7 turns, 5,000 in (1,250 cached) / 500 out tokens, agent 12.5 s, USD unknown)")


def test_when_every_task_passes_the_brief_says_so_and_aims_at_cost(tmp_path):
    text = render(experiment(tmp_path, rewards=(1.0, 1.0)))
    saturated = text.split("## Every task passes\n\n")[1].split("\n\n")[0]
    assert saturated.startswith("The best harness passes all 2 tasks you work on: the score cannot rise here.")
    assert "Your objective is now cost" in saturated and "tokens per task (3,610 tokens now" in saturated
    assert "keep (cheaper)" in saturated and "loses a task is discarded" in saturated
    plain = render(experiment(tmp_path, rewards=(1.0, 1.0)), objective="score")
    assert "## Every task passes" in plain and "objective is now cost" not in plain
