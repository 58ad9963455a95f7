"""`autoagent status`: no runs, a run going on in another process, a finished run."""

import os
import subprocess
import sys

from typer.testing import CliRunner

from autoagent import display, workspace
from autoagent.cli import app
from autoagent.ledger import Experiment, Ledger
from autoagent.live import LiveStatus
from autoagent.spend import Meter
from tests.conftest import flat


def status(root, monkeypatch) -> str:
    monkeypatch.chdir(root)
    result = CliRunner().invoke(app, ["status"])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    return flat(result.output)


def test_no_runs_running_and_finished(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    assert "No loop runs yet" in status(ws.root, monkeypatch)

    ledger = Ledger(ws.root)
    ledger.save(Experiment(0, "baseline", commit="a" * 40, description="baseline", passed=2, total=3,
                           cost_usd={"task": 0.5, "meta": 0.0}))  # fmt: skip
    ledger.save(Experiment(1, "keep", commit="b" * 40, description="re-read the instruction", passed=3,
                           total=3, cost_usd={"task": 0.25, "meta": 0.125}))  # fmt: skip
    meter = Meter(ws.root / ".autoagent" / "spend.jsonl")
    for role, cost in [("task", 0.5), ("task", 0.25), ("meta", 0.125), ("meta", 0.0625)]:  # the last: a failed proposal
        meter.record(role=role, model="scripted/examples", cost_usd=cost, input_tokens=1, output_tokens=1)
    live = LiveStatus(pid=os.getpid(), experiment=2, phase="evaluating", trials_done=4, trials_total=9,
                      best={"id": 1, "passed": 3, "total": 3}, spend={"task": 0.75, "meta": 0.125},
                      budget={"usd": 50}, last="experiment 2: 4 trials on 3 tasks")  # fmt: skip
    live.save(ws.root)
    running = status(ws.root, monkeypatch)
    assert "Running (pid" in running and "experiment 2 · evaluating · trials 4/9" in running
    assert "of $50" in running and "Best: experiment 1, passed 3/3" in running
    assert "keep rate 1/1" in running and "re-read the instruction" in running

    live.phase = "stopped"
    live.save(ws.root)
    ledger.note("stop", reason="3 iterations done (--iterations 3)")
    finished = status(ws.root, monkeypatch)
    assert "Not running. Last stop: 3 iterations done" in finished
    assert "Spent: $0.7500 on task runs, $0.1875 on the meta-agent" in finished  # as spend.jsonl has it


def test_a_killed_run_is_not_reported_as_running(tmp_path, monkeypatch):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    LiveStatus(pid=2**22 + 12345, experiment=1, phase="evaluating").save(ws.root)  # no such process
    Ledger(ws.root).save(Experiment(0, "baseline", commit="a" * 40, passed=1, total=3))
    assert "Not running. Last stop: unknown (the run was killed?)" in status(ws.root, monkeypatch)


def test_status_does_not_load_litellm(tmp_path):
    """LiteLLM takes seconds to import; status is what you type while a run goes on."""
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    script = ("import sys\nfrom autoagent.cli import app\ntry:\n    app(['status'])\nexcept SystemExit:\n    pass\n"
              "print('litellm loaded' if 'litellm' in sys.modules else 'litellm not loaded')")  # fmt: skip
    completed = subprocess.run([sys.executable, "-c", script], cwd=ws.root, capture_output=True, text=True)
    assert "No loop runs yet" in completed.stdout and "litellm not loaded" in completed.stdout, completed.stderr


def test_an_unknown_cost_is_never_shown_as_zero(tmp_path, monkeypatch):
    """Calls to a model without a price: every total says "+ unknown", none says $0."""
    from autoagent import report

    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    meter = Meter(ws.root / ".autoagent" / "spend.jsonl")
    monkeypatch.setenv("AUTOAGENT_EXPERIMENT", "0")
    for role, cost in [("task", 0.42), ("task", None), ("meta", 0.1)]:
        meter.record(role=role, model="openai/local", cost_usd=cost, input_tokens=1, output_tokens=1)
    spent, unknown = meter.by_role(experiment="0")
    assert unknown == ["task"]
    Ledger(ws.root).save(Experiment(0, "baseline", commit="a" * 40, description="baseline", passed=1, total=3,
                                    cost_usd=spent, cost_unknown=unknown))  # fmt: skip
    assert "0.5200 + unknown\tbaseline" in (ws.root / "results.tsv").read_text()
    assert Ledger(ws.root).experiments()[0].cost_unknown == ["task"]  # runs.jsonl keeps it
    shown = status(ws.root, monkeypatch)
    assert "Spent: $0.4200 + unknown on task runs, $0.1000 on the meta-agent" in shown
    live = LiveStatus(spend={"task": 0.42, "meta": 0.1}, spend_unknown=["task"])
    assert "spent task $0.42 + unknown, meta $0.10" in display.live_line(live)
    page = report.render(report.Run.load(ws.root), ws.root)
    assert "$0.42 + unknown on task runs" in page and "$0.520 + unknown" in page


def test_a_composed_candidate_counts_as_kept_and_the_lineage_of_the_best_is_shown(tmp_path, monkeypatch):
    """2 won against a stale parent: superseded, its change composed onto 1 as 3 and kept. Of the
    meta-agent's three proposals (1, 2, 4), two landed in the best; 3 is the loop's, not a proposal."""
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    ledger = Ledger(ws.root)
    for e in [
        Experiment(0, "baseline", commit="a" * 40, description="baseline", passed=1, total=4),
        Experiment(1, "keep", commit="b" * 40, parent_id=0, description="re-read", passed=2, total=4),
        Experiment(2, "superseded", commit="c" * 40, parent_id=0, description="retry", passed=2, total=4),
        Experiment(3, "keep", commit="d" * 40, parent_id=1, composed_from=2, description="retry", passed=3, total=4),
        Experiment(4, "discard", commit="e" * 40, parent_id=3, description="shorter", passed=2, total=4),
    ]:  # fmt: skip
        ledger.save(e)
    shown = status(ws.root, monkeypatch)
    assert "1 superseded" in shown and "keep rate 2/3" in shown
    assert "Lineage of the best: 0 → 1 → 3 (composes 2)" in shown
    assert "\tsuperseded\tretry" in ledger.tsv.read_text()
