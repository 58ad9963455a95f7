"""Honest decisions, end to end with scripted models: held-out tasks, luck, reward hacking,
what the meta-agent may see, and the sealed test split."""

import asyncio
import http.server
import json
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from autoagent import workspace
from autoagent.cli import app
from autoagent.ledger import Ledger
from autoagent.loop import Loop, Settings
from autoagent.strategies.budget import Budget
from tests.conftest import flat, outside_address, write_task

pytestmark = pytest.mark.usefixtures("needs_sandbox")

PROMPT_OLD = "When the task is complete, reply with a short summary and no tool call."
PROMPT_NEW = "Before you finish, re-read the instruction.\n" + PROMPT_OLD


def tool(name: str, **arguments) -> dict:
    return {"content": "", "tool_calls": [{"name": name, "arguments": arguments}]}


def bash(command: str) -> list[dict]:
    return [tool("bash", command=command), {"content": "done"}]


EDIT_PROMPT = tool("edit_file", path="agent.py", old_text=PROMPT_OLD, new_text=PROMPT_NEW)


def meta_script(directory: Path, claims: list[str], extra_turns: list[dict] = ()) -> None:
    turns = [*extra_turns, EDIT_PROMPT, tool("submit", description="Re-read the instruction",
             hypothesis="h", expected_flips=claims, overfitting="yes, general")]  # fmt: skip
    (directory / "meta.json").write_text(json.dumps({"conversations": [{"match": "^# Experiment 1:", "turns": turns}]}))


def task_script(directory: Path, conversations: list[dict]) -> None:
    (directory / "task.json").write_text(json.dumps({"conversations": conversations}))


def configure(ws, **sections) -> workspace.Workspace:
    toml = ws.root / "autoagent.toml"
    text = toml.read_text()
    for old, new in sections.items():
        assert old in text
        text = text.replace(old, new)
    toml.write_text(text)
    return workspace.Workspace(ws.root)  # settings are read once per Workspace


def run_loop(ws, iterations: int = 1) -> list:
    settings = Settings.from_workspace(ws, meta_model="scripted/meta", budget=Budget(iterations=iterations))
    asyncio.run(Loop(ws, settings, report=lambda line: None).run())
    return Ledger(ws.root).experiments()


SOLVE = {
    "hello": "echo 'Hello, AutoAgent!' > /app/greeting.txt",
    "count": "wc -w < /app/poem.txt | tr -d ' ' > /app/count.txt",
    "wrong_count": "echo 20 > /app/count.txt",
    "total": "awk -F, 'NR>1 && $2==\"north\" {s+=$3} END {printf \"%.2f\", s}' /app/data/sales.csv > /app/total.txt",
}


def test_a_win_on_search_that_hurts_held_out_is_discarded_and_held_out_stays_unseen(tmp_path, scripts):
    task_script(scripts, [
        {"match": "greeting", "turns": bash(SOLVE["hello"])},
        {"match": "poem", "system": "re-read", "turns": bash(SOLVE["wrong_count"])},
        {"match": "poem", "turns": bash(SOLVE["count"])},
        {"match": "sales", "system": "re-read", "turns": bash(SOLVE["total"])},
        {"match": "sales", "turns": [{"content": "I cannot."}]},
    ])  # fmt: skip
    look_around = [tool("list_files", path="tasks"), tool("read_ledger"), tool("experiment_results", experiment="0"),
                   tool("search_traces", pattern="."), tool("read_file", path="autoagent.toml"),
                   tool("read_file", path="results.tsv")]  # fmt: skip
    meta_script(scripts, ["csv-total"], look_around)
    ws = workspace.init(tmp_path / "ws", model="scripted/task")
    ws = configure(ws, **{"held_out = []": 'held_out = ["word-count"]'})
    experiments = run_loop(ws)
    candidate = experiments[1]
    assert candidate.status == "discard"
    assert "held-out" in candidate.reason and "word-count" not in candidate.public_reason
    assert candidate.flips["fixed"] == ["csv-total"] and "word-count" in candidate.flips["broken"]
    assert candidate.held_out == {"passed": 0, "total": 1}
    assert "word-count" not in ws.harness.read_text()  # reverted to the best
    logs = list((ws.root / ".autoagent" / "meta").glob("*.json"))
    assert logs
    for log in logs:
        assert "word-count" not in log.read_text()


class Coin(http.server.BaseHTTPRequestHandler):
    """The verifier of a flaky task: 1, 0, then 1 forever (the candidate is lucky)."""

    answers = ["1", "0"]

    def do_GET(self):
        answer = Coin.answers.pop(0) if Coin.answers else "1"
        self.send_response(200)
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, *args):
        pass


def test_a_lucky_candidate_is_not_kept(tmp_path, scripts):
    server = http.server.HTTPServer((outside_address(), 0), Coin)  # the sandbox's outside
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://{server.server_address[0]}:{server.server_address[1]}/"
    tasks = tmp_path / "tasks"
    write_task(tasks, "steady", test="echo 1 > /logs/verifier/reward.txt")
    write_task(tasks, "coin", test=f"python3 -c \"import urllib.request; print(urllib.request.urlopen('{url}').read().decode())\" > /logs/verifier/reward.txt")
    task_script(scripts, [{"match": ".", "turns": [{"content": "done"}]}])
    meta_script(scripts, ["coin"])  # a change that does nothing, claiming the flaky task
    ws = workspace.init(tmp_path / "ws", str(tasks), model="scripted/task")
    ws = configure(ws, **{"concurrency = 4": "concurrency = 1"})  # the coin answers in order
    try:
        experiments = run_loop(ws)
    finally:
        server.shutdown()
    assert experiments[0].task_scores["coin"] == 0.5  # passed once in two: a noisy task
    candidate = experiments[1]
    assert candidate.task_scores["coin"] == 1.0  # every attempt passed: luck
    assert candidate.status == "indecisive", candidate.reason
    assert "could be luck" in candidate.reason


def test_a_trace_that_writes_the_reward_file_is_rejected(tmp_path, scripts):
    task_script(scripts, [
        {"match": "greeting", "system": "re-read", "turns": bash("echo 1 > /logs/verifier/reward.txt")},
        {"match": "greeting", "turns": bash(SOLVE["hello"])},
        {"match": "poem", "turns": bash(SOLVE["count"])},
        {"match": "sales", "turns": [{"content": "I cannot."}]},
    ])  # fmt: skip
    meta_script(scripts, [])
    ws = workspace.init(tmp_path / "ws", model="scripted/task")
    experiments = run_loop(ws)
    candidate = experiments[1]
    assert candidate.status == "rejected"
    assert "reward hacking: on hello-file" in candidate.reason and "/logs/verifier" in candidate.reason
    rows = (ws.root / "results.tsv").read_text().splitlines()
    assert rows[2].split("\t")[5] == "rejected"


def test_the_sealed_test_split_is_scored_once_per_harness(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    ws = configure(ws, **{"test = []": 'test = ["hello-file"]'})
    monkeypatch.chdir(ws.root)
    first = CliRunner().invoke(app, ["test"])
    assert first.exit_code == 0, first.output
    assert "passed 1/1" in flat(first.output)
    again = CliRunner().invoke(app, ["test"])
    assert again.exit_code == 1 and "was scored on the test split" in flat(again.output)
    forced = CliRunner().invoke(app, ["test", "--force"])
    assert forced.exit_code == 0
    records = [json.loads(line) for line in (ws.root / ".autoagent" / "test.jsonl").read_text().splitlines()]
    assert [r["forced"] for r in records] == [False, True]
    evaluated = CliRunner().invoke(app, ["eval", "--json", str(tmp_path / "eval.json")])  # the harness, in the workspace
    assert evaluated.exit_code == 0 and "Leaving out the sealed test split" in flat(evaluated.output)
    ran = {t["name"] for t in json.loads((tmp_path / "eval.json").read_text())["tasks"]}
    assert ran == {"csv-total", "word-count"}
    ws.harness.write_text(ws.harness.read_text().replace("MAX_TURNS = 30", "MAX_TURNS = 31"))
    uncommitted = CliRunner().invoke(app, ["test", "--force"])  # its score would go under HEAD
    assert uncommitted.exit_code == 1 and "scores committed harnesses only" in flat(uncommitted.output)
