"""What the loop costs beyond evaluating, and how big the meta-agent's first prompt gets.

    uv run python benchmarks/loop_overhead.py [--iterations 5] [--tasks 4] [--gate paired|reference]

1. `autoagent run` on trivial tasks with instant scripted models (the task agent
   answers at once; the meta-agent makes one edit and submits), with the decision
   gate the workspace config sets (`paired` by default; `--gate` to pick another):
   per iteration, the wall time beyond the evaluation itself, and where it goes.
   "The evaluation" is the time spent in the evaluation's Harbor jobs (its trials);
   a smoke run (the reference gate's) and the gate's own work around the jobs count
   as overhead. An iteration runs from one "is proposing" to the next (or the end
   of the run), so the worker's exit and the next one's start are counted too.
2. The meta-agent's first prompt (system prompt, tool schemas, brief) for a
   workspace whose best harness failed 50 trials with long traces, in tokens
   (tiktoken's cl100k, via LiteLLM), and a check that every one of those traces
   is still reachable with the read_trajectory tool.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

from autoagent import workspace
from autoagent.ledger import Experiment, Ledger
from autoagent.loop import Loop, Settings
from autoagent.meta import brief
from autoagent.meta.tools import MetaTools
from autoagent.strategies import gate as gates
from autoagent.strategies.budget import Budget


def trivial_tasks(root: Path, count: int) -> Path:
    for index in range(count):
        task = root / f"trivial-{index:02d}"
        for sub in ("environment", "solution", "tests"):
            (task / sub).mkdir(parents=True)
        (task / "task.toml").write_text('version = "1.0"\n')
        (task / "instruction.md").write_text(f"Trivial task {index}.\n")
        (task / "environment" / "Dockerfile").write_text("FROM debian:bookworm-slim\nWORKDIR /app\n")
        (task / "solution" / "solve.sh").write_text("#!/bin/bash\ntrue\n")
        (task / "tests" / "test.sh").write_text("#!/bin/bash\necho 1 > /logs/verifier/reward.txt\n")
    return root


class TimedLoop(Loop):
    """The loop unchanged, but for a clock on its evaluation jobs: seconds by experiment and
    label ("eval", "smoke"), and, under "eval-wait", how long the evaluation's jobs took to
    start their first trial (the worker still starting, Harbor setting the job up)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.job_seconds: dict[int, dict[str, float]] = {}
        self._first_trial: float | None = None
        self._untimed, self.trials.evaluate = self.trials.evaluate, self.evaluate

    async def evaluate(self, experiment, tasks, label, worker, attempts):
        started, self._first_trial = time.monotonic(), None
        try:
            return await self._untimed(experiment, tasks, label, worker, attempts)
        finally:
            spent = self.job_seconds.setdefault(experiment.id, {})
            spent[label] = spent.get(label, 0.0) + time.monotonic() - started
            if self._first_trial is not None:
                wait = f"{label}-wait"
                spent[wait] = spent.get(wait, 0.0) + self._first_trial - started

    def _trial_event(self, event: dict) -> None:
        if event.get("event") == "start" and self._first_trial is None:
            self._first_trial = time.monotonic()
        super()._trial_event(event)


# Rows of the table: key, label. A row whose phase never occurred is left out.
ROWS = [
    ("wall", "whole iteration (from one proposal to the next)"),
    ("eval", "the evaluation itself: its Harbor jobs"),
    ("eval-wait", "of that, until its first trial starts (the worker's start-up, Harbor's job set-up)"),
    ("smoke", "smoke run (one task, before a reference-gate evaluation)"),
    ("propose", "proposal (meta-agent turns, commit)"),
    ("validate", "validation (boundary, names, import in a fresh process)"),
    ("gate", "the gate's stages around the jobs (trace scan, scoring)"),
    ("decide", "the rest: brief, decision, git, ledger"),
    ("handover", "the worker's exit, the next worker's start"),
]


def loop_overhead(iterations: int, tasks: int, scratch: Path, gate: str | None = None) -> dict:
    scripts = scratch / "scripts"
    scripts.mkdir()
    (scripts / "instant.json").write_text(json.dumps({"conversations": [{"match": ".", "turns": [{"content": "done"}]}]}))
    edit = {"name": "edit_file", "arguments": {"path": "agent.py", "old_text": "MAX_TURNS = 30", "new_text": "MAX_TURNS = 31"}}
    submit = {"name": "submit", "arguments": {"description": "d", "hypothesis": "h", "expected_flips": [], "overfitting": "y"}}
    (scripts / "meta.json").write_text(json.dumps({"conversations": [{"match": ".", "turns": [
        {"content": "", "tool_calls": [edit]}, {"content": "", "tool_calls": [submit]}]}]}))  # fmt: skip
    os.environ["AUTOAGENT_SCRIPTS"] = str(scripts)
    ws = workspace.init(scratch / "ws", str(trivial_tasks(scratch / "tasks", tasks)), model="scripted/instant")
    settings = Settings.from_workspace(ws, meta_model="scripted/meta", budget=Budget(iterations=iterations),
                                       gate=gates.make(gate) if gate else None)  # fmt: skip
    marks: list[tuple[float, int, str]] = []  # when, experiment, what
    began = time.monotonic()

    def report(line: str) -> None:
        print(f"  [{time.monotonic() - began:6.1f} s] {line}", file=sys.stderr, flush=True)
        match = re.match(r"experiment (\d+): (.*)", line)
        if match:
            marks.append((time.monotonic(), int(match[1]), match[2]))

    loop = TimedLoop(ws, settings, report=report)
    asyncio.run(loop.run())
    finished = time.monotonic()
    starts = {n: t for t, n, what in marks if "is proposing" in what}
    decided = {n: t for t, n, _ in marks}  # the last line of an experiment is its decision
    order = sorted(starts)
    rows, statuses, trials, jobs = [], [], [], []
    for experiment in Ledger(ws.root).experiments():
        n = experiment.id
        if n not in starts or n not in decided:
            continue  # the baseline; or a proposal that never became a candidate
        following = [starts[m] for m in order if m > n]
        end = following[0] if following else finished
        phases, seconds = experiment.timings, loop.job_seconds.get(n, {})
        row = {"wall": end - starts[n], "eval": seconds.get("eval", 0.0), "propose": phases.get("propose", 0.0),
               "validate": phases.get("validate", 0.0), "handover": end - decided[n]}  # fmt: skip
        if "smoke" in seconds:
            row["smoke"] = seconds["smoke"]
        jobs_total = seconds.get("eval", 0.0) + seconds.get("smoke", 0.0)
        row["gate"] = phases.get("evaluate", 0.0) - jobs_total
        row["decide"] = row["wall"] - sum(v for k, v in row.items() if k != "wall")  # what no other row holds
        row["eval-wait"] = seconds.get("eval-wait", 0.0)  # part of "eval", not a phase of its own
        rows.append(row)
        statuses.append(experiment.status)
        trials.append(sum(t.get("label") == "eval" for t in experiment.trials))
        jobs.append(sum("-eval" in Path(d).name for d in experiment.job_dirs))
    if not rows:
        raise SystemExit(f"No candidate was judged; see the log above and {ws.root / '.autoagent'}")
    keys = [key for key, _ in ROWS if any(key in row for row in rows)]
    mean = {key: statistics.mean(row.get(key, 0.0) for row in rows) for key in keys}
    return {"mean": mean, "gate": settings.gate.name, "n": len(rows), "statuses": statuses,
            "trials": statistics.mean(trials), "jobs": statistics.mean(jobs)}  # fmt: skip


def first_prompt(scratch: Path, failed: int = 50) -> tuple[int, int, bool]:
    ws = workspace.init(scratch / "big")
    names = [f"task-{i:02d}" for i in range(failed)]
    trials = []
    for name in names:
        trial = scratch / "trials" / name
        (trial / "agent").mkdir(parents=True)
        (trial / "verifier").mkdir()
        steps = [{"step_id": 1, "source": "system", "message": "system prompt " * 50},
                 {"step_id": 2, "source": "user", "message": f"Instruction of {name}. " * 40}]  # fmt: skip
        for n in range(3, 43):  # 40 agent turns with long outputs
            steps.append({"step_id": n, "source": "agent", "message": "Next I will look at the logs. " * 5,
                          "reasoning_content": "thinking " * 100,
                          "tool_calls": [{"tool_call_id": f"c{n}", "function_name": "bash",
                                          "arguments": {"command": f"grep -rn error /var/log/{n}"}}],
                          "observation": {"results": [{"source_call_id": f"c{n}", "content": "line of output\n" * 300}]}})  # fmt: skip
        (trial / "agent" / "trajectory.json").write_text(json.dumps({"steps": steps}))
        (trial / "verifier" / "test-stdout.txt").write_text("FAILED test_x - AssertionError\n" * 1000)
        trials.append({"task": name, "trial_name": name, "trial_dir": str(trial), "reward": 0.0,
                       "error": None, "category": None})  # fmt: skip
    ledger = Ledger(ws.root)
    ledger.save(Experiment(0, "baseline", commit="0" * 40, description="baseline", trials=trials,
                           passed=0, total=failed, avg_score=0.0, task_scores={n: 0.0 for n in names}))  # fmt: skip
    tools = MetaTools(ws.root, ledger, names, ws.harness.read_text())
    text = brief.render(experiment_id=1, program=brief.program_text(ws.root), harness=ws.harness.read_text(),
                        experiments=ledger.experiments(), best=ledger.best(), visible=names)  # fmt: skip
    from autoagent.llm import _litellm

    messages = [{"role": "system", "content": brief.SYSTEM_PROMPT}, {"role": "user", "content": text}]
    tokens = _litellm().token_counter(model="gpt-4o", messages=messages, tools=tools.schemas())
    on_disk = sum(len((Path(t["trial_dir"]) / "agent" / "trajectory.json").read_text()) for t in trials)
    reachable = all(
        "step 42" in asyncio.run(tools.call("read_trajectory", {"experiment": "0", "task": n, "start_step": 42}))
        for n in names
    )
    return tokens, on_disk, reachable


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--iterations", type=int, default=5)
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--gate", choices=["paired", "reference"], help="default: the workspace config's (paired)")
    args = parser.parse_args()
    os.environ.setdefault("HARBOR_TELEMETRY", "0")
    with tempfile.TemporaryDirectory(prefix="autoagent-loop-bench-") as temporary:
        scratch = Path(temporary)
        print(f"running {args.iterations} iterations of `autoagent run` on {args.tasks} trivial tasks...",
              file=sys.stderr, flush=True)  # fmt: skip
        result = loop_overhead(args.iterations, args.tasks, scratch, args.gate)
        print("measuring the first meta-agent prompt...", file=sys.stderr, flush=True)
        tokens, on_disk, reachable = first_prompt(scratch)
    overhead = result["mean"]
    decisions = ", ".join(f"{result['statuses'].count(s)} {s}" for s in sorted(set(result["statuses"])))
    print(f"\n# Loop overhead ({os.cpu_count()} cores; {args.tasks} trivial tasks; instant scripted models; "
          f"{result['gate']} gate; mean of {result['n']} iterations: {decisions})\n")  # fmt: skip
    print("| per iteration | seconds |\n|---|---|")
    for key, label in ROWS:
        if key in overhead:
            if key == "eval":
                label += f" ({result['trials']:g} trials in {result['jobs']:g} job{'s' * (result['jobs'] != 1)})"
            print(f"| {label} | {overhead[key]:.2f} |")
    print(f"| **beyond the evaluation** | **{overhead['wall'] - overhead['eval']:.2f}** |")
    if overhead.get("eval-wait"):
        trials_only = overhead["wall"] - overhead["eval"] + overhead["eval-wait"]
        print(f"| beyond the trials (the wait for the first trial counted as overhead) | {trials_only:.2f} |")
    print(f"\nFirst meta-agent prompt with 50 failed trials: {tokens:,} tokens "
          f"(traces on disk: {on_disk / 1e6:.1f} MB); every trace reachable by read_trajectory: {reachable}")  # fmt: skip


if __name__ == "__main__":
    main()
