"""How big and how fast is the report of a long run? 200 experiments, 50 tasks.

    uv run python benchmarks/report_scale.py [--experiments 200] [--tasks 50]

Writes a synthetic workspace (a ledger, a spend meter, git candidates with real
diffs), renders `autoagent report`, and times how long headless Chromium takes to
load it (the `load` event, median of 5). Aims: under 5 MB, under 2 s.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from pathlib import Path

from autoagent import jsonl, workspace
from autoagent.history import History
from autoagent.ledger import Experiment, Ledger

STATUSES = ["discard"] * 6 + ["keep", "crash", "indecisive", "rejected"]


def synthetic(root: Path, experiments: int = 200, tasks: int = 50, seed: int = 0) -> Path:
    """A workspace whose ledger looks like a long, real run."""
    rng = random.Random(seed)
    ws = workspace.init(root, model="scripted/examples")
    history, ledger = History(ws.root), Ledger(ws.root)
    names = [f"task-{i:02d}" for i in range(tasks)]
    rates = {t: rng.random() for t in names}
    best = Experiment(0, "baseline", commit=history.head(), description="baseline",
                      task_scores={t: float(rng.random() < rates[t]) for t in names})  # fmt: skip
    best.passed, best.total = int(sum(best.task_scores.values())), tasks
    start = time.time() - experiments * 600
    meter = ws.root / ".autoagent" / "spend.jsonl"
    for i in range(experiments):
        e = best if i == 0 else None
        if e is None:
            status = rng.choice(STATUSES)
            ws.harness.write_text(ws.harness.read_text().replace("MAX_TURNS = ", f"# experiment {i}\nMAX_TURNS = ", 1))
            commit = history.commit_candidate(i, f"Experiment {i}")
            scores = {t: float(rng.random() < rates[t] + (0.1 if status == "keep" else 0)) for t in names}
            e = Experiment(i, status, commit=commit, parent=best.commit, parent_id=best.id,
                           description=f"Change number {i}: " + "tweak the prompt " * rng.randint(1, 5),
                           hypothesis="It should help on tasks that fail because " + "reasons " * 10,
                           expected_flips=rng.sample(names, 2), task_scores=scores,
                           flips={"fixed": rng.sample(names, 1), "broken": []}, hit_rate=rng.random(),
                           reason="gain +1.00 tasks over 50, p=0.0100 that it is luck",
                           cost_usd={"task": rng.random(), "meta": rng.random() / 3})  # fmt: skip
            if status != "crash":
                e.passed, e.total = int(sum(scores.values())), tasks
            if status == "keep":
                history.keep(commit)
                best = e
            else:
                history.restore()
        e.trials = [{"task": t, "trial_name": f"{t}__x", "trial_dir": str(ws.jobs_dir / f"exp{i}" / f"{t}__x"),
                     "reward": s, "error": None} for t, s in e.task_scores.items()]  # fmt: skip
        ledger.save(e)
        for role in ("task", "meta"):
            jsonl.append(meter, {"time": start + i * 600, "role": role, "experiment": str(i),
                                 "cost_usd": e.cost_usd.get(role, 0.1), "model": "m"})  # fmt: skip
    return ws.root


def load_seconds(page: Path, repeats: int = 5) -> float:
    from playwright.sync_api import sync_playwright

    times = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])  # fmt: skip
        for _ in range(repeats):
            tab = browser.new_page()
            started = time.perf_counter()
            tab.goto(page.as_uri(), wait_until="load")
            tab.evaluate("() => document.querySelectorAll('rect').length")  # laid out and scriptable
            times.append(time.perf_counter() - started)
            tab.close()
        browser.close()
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--experiments", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=50)
    args = parser.parse_args()
    from autoagent import report

    with tempfile.TemporaryDirectory() as temporary:
        root = synthetic(Path(temporary) / "ws", args.experiments, args.tasks)
        started = time.perf_counter()
        page, _ = report.write(root)
        rendered = time.perf_counter() - started
        size = page.stat().st_size
        seconds = load_seconds(page)
    print(f"Report of {args.experiments} experiments × {args.tasks} tasks: {size / 1e6:.2f} MB "
          f"(aim: under 5), written in {rendered:.1f} s, loaded by headless Chromium in {seconds:.2f} s "
          f"(median of 5; aim: under 2)")  # fmt: skip


if __name__ == "__main__":
    main()
