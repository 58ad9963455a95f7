"""Cheaper at equal score: the loop keeps a candidate that halves the agent's turns and
discards one that is cheaper but loses a task; the saving is on screen, in the ledger and
in the report. Scripted models, the example tasks, real sandboxes."""

import json
import re

import pytest
from typer.testing import CliRunner

from autoagent import report, workspace
from autoagent.cli import app
from autoagent.ledger import Ledger
from tests.conftest import flat

pytestmark = pytest.mark.usefixtures("needs_sandbox")

PROMPT = "You are a capable software engineer"


def tool(name: str, **arguments) -> dict:
    return {"content": "", "tool_calls": [{"name": name, "arguments": arguments}]}


def bash(command: str) -> dict:
    return tool("bash", command=command)


def submit(description: str) -> dict:
    return tool("submit", description=description, hypothesis="fewer turns", expected_flips=[],
                overfitting="Yes, it is general.")  # fmt: skip


GREET = "echo 'Hello, AutoAgent!' > /app/greeting.txt"
COUNT = "wc -w < /app/poem.txt | tr -d ' ' > /app/count.txt"
TASK_MODEL = [
    # "Skip checks": cheaper still, but the greeting is never written.
    {"match": "greeting", "system": "Skip checks", "turns": [{"content": "Done."}]},
    {"match": "poem", "system": "Skip checks", "turns": [bash(COUNT), {"content": "Done."}]},
    # "Be brief": the same work in half the turns.
    {"match": "greeting", "system": "Be brief", "turns": [bash(GREET), {"content": "Done."}]},
    {"match": "poem", "system": "Be brief", "turns": [bash(COUNT), {"content": "Done."}]},
    # The baseline looks around and checks its work: four turns a task.
    {"match": "greeting", "turns": [bash("ls /app"), bash(GREET), bash("cat /app/greeting.txt"), {"content": "Done."}]},
    {"match": "poem", "turns": [bash("cat /app/poem.txt"), bash(COUNT), bash("cat /app/count.txt"), {"content": "Done."}]},
]  # fmt: skip
META = [
    {"match": "^# Experiment 1:", "turns": [
        tool("edit_file", path="agent.py", old_text=PROMPT, new_text="Be brief. " + PROMPT),
        submit("Be brief: act at once, skip the looking around"),
    ]},
    {"match": "^# Experiment 2:", "turns": [
        tool("edit_file", path="agent.py", old_text="Be brief. ", new_text="Skip checks. Be brief. "),
        submit("Skip the checks too"),
    ]},
]  # fmt: skip


def test_a_candidate_with_half_the_turns_is_kept_as_cheaper_and_one_that_loses_a_task_is_not(
    tmp_path, scripts, monkeypatch
):
    for name, conversations in (("task", TASK_MODEL), ("meta", META)):
        (scripts / f"{name}.json").write_text(json.dumps({"conversations": conversations}))
    ws = workspace.init(tmp_path / "ws", model="scripted/task")
    toml = ws.root / "autoagent.toml"
    toml.write_text(toml.read_text().replace("include = []", 'include = ["hello-file", "word-count"]'))
    monkeypatch.chdir(ws.root)
    result = CliRunner().invoke(app, ["run", "--iterations", "2", "--meta-model", "scripted/meta", "--plain"])
    assert result.exit_code == 0, result.output

    baseline, cheaper, lossy = Ledger(ws.root).experiments()
    assert (baseline.passed, cheaper.passed) == (2, 2)
    assert (cheaper.status, cheaper.kept_as) == ("keep", "cheaper")
    assert cheaper.effort["measure"] == "usd"  # the scripted model has prices: USD is compared
    assert (baseline.effort["turns"], cheaper.effort["turns"]) == (4, 2)
    assert cheaper.effort["usd"] < baseline.effort["usd"] and cheaper.effort["change"] < -0.2
    assert all(t["turns"] == 2 and t["input_tokens"] and t["agent_seconds"] is not None for t in cheaper.trials)
    screen = flat(result.output)
    assert "experiment 1: keep (cheaper) · passed 2/2" in screen
    assert "cheaper at equal score: usd per task" in screen and "%, p=" in screen

    assert lossy.status == "discard" and lossy.kept_as == ""
    assert lossy.effort["change"] < 0  # it was cheaper, and lost a task: never traded
    assert lossy.flips["broken"] == ["hello-file"] and "worse on hello-file" in lossy.reason
    assert "Be brief" in ws.harness.read_text() and "Skip checks" not in ws.harness.read_text()

    tsv = [line.split("\t") for line in (ws.root / "results.tsv").read_text().splitlines()]
    assert tsv[0][:8] == ["commit", "avg_score", "passed", "task_scores", "cost_usd", "status", "description",
                          "hit_rate"] and tsv[0][8] == "cost_per_task"  # fmt: skip
    assert tsv[2][5] == "keep" and tsv[2][8].endswith(" usd")
    assert float(tsv[2][8].split()[0]) < float(tsv[1][8].split()[0])

    page, _ = report.write(ws.root)
    html = page.read_text()
    assert "keep (cheaper)" in html
    chart = html.split("<svg id=score-cost")[1].split("</svg>")[0]
    assert chart.count("<circle") == 3 and "class=kept-frontier" in chart
    assert "<svg id=cost-per-task" in html and "against its parent" in html
    assert "Every search task passes (2/2)" in html and "Add harder tasks" in html
    status = flat(CliRunner().invoke(app, ["status"]).output)
    assert "Cost per task (usd):" in status and "against its parent" in status and "Add harder tasks" in status
    assert "keep (cheaper)" in status


def test_the_objective_and_cost_measure_are_checked(tmp_path):
    from autoagent.config import ConfigError, load

    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    toml = ws.root / "autoagent.toml"
    base = toml.read_text()
    toml.write_text(base.replace('cost_measure = "auto"', 'cost_measure = "dollars"'))
    with pytest.raises(ConfigError, match=r"autoagent.toml, line \d+: \[decision\] cost_measure: .*'usd'.*'dollars'"):
        load(toml)
    toml.write_text(base.replace('objective = "score-then-cost"', 'objective = "cost"'))
    with pytest.raises(ConfigError, match=r"\[decision\] objective: .*'score-then-cost'"):
        load(toml)
    toml.write_text(base.replace('cost_measure = "auto"', 'cost_measure = "turns"'))
    assert load(toml).decision.cost_measure == "turns"


def test_eval_shows_each_trials_turns_tokens_time_and_cost(tmp_path, scripts, monkeypatch):
    (scripts / "task.json").write_text(json.dumps({"conversations": TASK_MODEL}))
    ws = workspace.init(tmp_path / "ws", model="scripted/task")
    monkeypatch.chdir(ws.root)
    result = CliRunner().invoke(app, ["eval", "-i", "hello-file", "--json", "eval.json"])
    assert result.exit_code == 0, result.output
    [trial] = json.loads((ws.root / "eval.json").read_text())["tasks"][0]["trials"]
    assert trial["turns"] == 4 and trial["input_tokens"] > trial["output_tokens"] > 0
    assert trial["cached_tokens"] == 0 and trial["cost_usd"] > 0 and 0 < trial["agent_seconds"] < trial["seconds"]
    row = re.search(r"hello-file\s*│\s*1\.00\s*│[^│]*│[^│]*│\s*(\d+)\s*│\s*([\d,]+)/", result.output)
    assert "┃ turns ┃" in result.output and row is not None, result.output
    assert (int(row.group(1)), row.group(2)) == (4, f"{trial['input_tokens']:,}")
