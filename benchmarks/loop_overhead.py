"""What the loop costs beyond evaluating, and how big the meta-agent's first prompt gets.

    uv run python benchmarks/loop_overhead.py [--iterations 5] [--tasks 4]

1. `autoagent run` on trivial tasks with instant scripted models (the task agent
   answers at once; the meta-agent makes one edit and submits): per iteration, the
   wall time beyond the evaluation itself, and where it goes.
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
import statistics
import tempfile
import time
from pathlib import Path

from autoagent import workspace
from autoagent.ledger import Experiment, Ledger
from autoagent.loop import Loop, Settings
from autoagent.meta import brief
from autoagent.meta.tools import MetaTools
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


def loop_overhead(iterations: int, tasks: int, scratch: Path) -> dict:
    scripts = scratch / "scripts"
    scripts.mkdir()
    (scripts / "instant.json").write_text(json.dumps({"conversations": [{"match": ".", "turns": [{"content": "done"}]}]}))
    edit = {"name": "edit_file", "arguments": {"path": "agent.py", "old_text": "MAX_TURNS = 30", "new_text": "MAX_TURNS = 31"}}
    submit = {"name": "submit", "arguments": {"description": "d", "hypothesis": "h", "expected_flips": [], "overfitting": "y"}}
    (scripts / "meta.json").write_text(json.dumps({"conversations": [{"match": ".", "turns": [
        {"content": "", "tool_calls": [edit]}, {"content": "", "tool_calls": [submit]}]}]}))  # fmt: skip
    os.environ["AUTOAGENT_SCRIPTS"] = str(scripts)
    ws = workspace.init(scratch / "ws", str(trivial_tasks(scratch / "tasks", tasks)), model="scripted/instant")
    marks: list[tuple[float, str]] = []
    settings = Settings.from_workspace(ws, meta_model="scripted/meta", budget=Budget(iterations=iterations))
    asyncio.run(Loop(ws, settings, report=lambda line: marks.append((time.monotonic(), line))).run())
    starts = {line.split(":")[0]: t for t, line in marks if "is proposing" in line}
    ends = {line.split(":")[0]: t for t, line in marks if line.split(": ")[1].startswith(("keep", "discard"))}
    experiments = {f"experiment {e.id}": e for e in Ledger(ws.root).experiments() if e.id > 0}
    rows = []
    for name, experiment in experiments.items():
        wall = ends[name] - starts[name]
        phases = experiment.timings
        rows.append({"wall": wall, "evaluate": phases["evaluate"], "smoke": phases["smoke"],
                     "propose": phases["propose"], "validate": phases["validate"],
                     "rest": wall - sum(phases.values())})  # fmt: skip
    return {key: statistics.mean(row[key] for row in rows) for key in rows[0]}


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
    args = parser.parse_args()
    os.environ.setdefault("HARBOR_TELEMETRY", "0")
    with tempfile.TemporaryDirectory(prefix="autoagent-loop-bench-") as temporary:
        scratch = Path(temporary)
        overhead = loop_overhead(args.iterations, args.tasks, scratch)
        tokens, on_disk, reachable = first_prompt(scratch)
    print(f"# Loop overhead ({os.cpu_count()} cores; {args.tasks} trivial tasks; instant scripted models; "
          f"mean of {args.iterations} iterations)\n")  # fmt: skip
    print("| per iteration | seconds |\n|---|---|")
    for key, label in [("wall", "whole iteration"), ("evaluate", "the evaluation itself"),
                       ("smoke", "smoke run (one task; the job that starts the candidate's worker)"),
                       ("propose", "proposal (brief, meta-agent turns, commit)"),
                       ("validate", "validation (boundary, names, import in a fresh process)"),
                       ("rest", "decision, git, ledger")]:  # fmt: skip
        print(f"| {label} | {overhead[key]:.2f} |")
    print(f"| **beyond the evaluation** | **{overhead['wall'] - overhead['evaluate']:.2f}** |")
    print(f"\nFirst meta-agent prompt with 50 failed trials: {tokens:,} tokens "
          f"(traces on disk: {on_disk / 1e6:.1f} MB); every trace reachable by read_trajectory: {reachable}")  # fmt: skip


if __name__ == "__main__":
    main()
