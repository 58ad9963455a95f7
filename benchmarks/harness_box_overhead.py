"""How much time does the harness box add per trial?

    uv run python benchmarks/harness_box_overhead.py [--trials 8] [--turns 10]

Whole Harbor trials of a trivial task (the sandbox, the template harness, a scripted
model that runs `--turns` commands), alternating: the harness imported in the worker
as before (`agent:AutoAgent`), and the harness in its box (what the loop runs).
1. One trial at a time: the median wall time of a trial each way, and of the agent's
   phases (setup + run).
2. Jobs of 8 trials at concurrency 4: the median wall time of a job each way.
Prints Markdown (the figures in BENCHMARKS.md come from it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path

from harbor.models.trial.config import AgentConfig

from autoagent import workspace
from autoagent.evaluate import job as jobs
from sandbox_overhead import trivial_tasks  # benchmarks/ is on the path of a script run from it



def seconds(timing: dict | None) -> float:
    if not timing or not timing.get("started_at") or not timing.get("finished_at"):
        return 0.0
    start, end = (datetime.fromisoformat(timing[k]) for k in ("started_at", "finished_at"))
    return (end - start).total_seconds()


async def job(worker: jobs.Worker, ws: workspace.Workspace, agent: AgentConfig, name: str,
              tasks: int, concurrency: int) -> tuple[float, list[dict]]:  # fmt: skip
    config = jobs.job_config(
        task_paths=[ws.tasks_dir / f"trivial-{i:03d}" for i in range(tasks)], agent=agent,
        environment=jobs.environment_config("sandbox"), jobs_dir=ws.jobs_dir,
        job_name=jobs.unique_job_name(name), n_concurrent=concurrency, n_attempts=1,
    )  # fmt: skip
    started = time.monotonic()
    job_dir = await worker.run(config)
    wall = time.monotonic() - started
    results = [json.loads(path.read_text()) for path in job_dir.glob("trivial-*__*/result.json")]
    for result in results:
        assert result["verifier_result"]["rewards"]["reward"] == 1.0, result.get("exception_info")
    return wall, results


async def one_trial(worker: jobs.Worker, ws: workspace.Workspace, agent: AgentConfig, name: str) -> tuple[float, float]:
    _, [result] = await job(worker, ws, agent, name, 1, 1)
    return seconds(result), seconds(result["agent_setup"]) + seconds(result["agent_execution"])


async def measure(ws: workspace.Workspace, trials: int) -> dict[str, list[tuple[float, float]]]:
    model = "scripted/bench"
    unboxed = AgentConfig(import_path=workspace.AGENT_IMPORT_PATH, model_name=model, skip_model_parsing=True)
    boxed = jobs.agent_config(workspace.AGENT_IMPORT_PATH, model)
    times: dict[str, list[tuple[float, float]]] = {"in the worker": [], "in its box": []}
    jobs_wall: dict[str, list[float]] = {"in the worker": [], "in its box": []}
    async with jobs.Worker(ws.root, model) as worker:
        await one_trial(worker, ws, unboxed, "warm")  # the first trial builds the image
        for _ in range(trials):
            times["in the worker"].append(await one_trial(worker, ws, unboxed, "unboxed"))
            times["in its box"].append(await one_trial(worker, ws, boxed, "boxed"))
        for _ in range(3):
            jobs_wall["in the worker"].append((await job(worker, ws, unboxed, "unboxed4", 8, 4))[0])
            jobs_wall["in its box"].append((await job(worker, ws, boxed, "boxed4", 8, 4))[0])
    return times, jobs_wall


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        trivial_tasks(root / "tasks", 8)
        scripts = root / "scripts"
        scripts.mkdir()
        turn = {"content": "", "tool_calls": [{"name": "bash", "arguments": {"command": "echo 1"}}]}
        conversation = {"match": ".", "turns": [turn] * args.turns + [{"content": "Done."}]}
        (scripts / "bench.json").write_text(json.dumps({"conversations": [conversation]}))
        os.environ["AUTOAGENT_SCRIPTS"] = str(scripts)
        ws = workspace.init(root / "ws", str(root / "tasks"), model="scripted/bench")
        times, jobs_wall = asyncio.run(measure(ws, args.trials))
    print(f"Harness box overhead, {platform.node()} ({os.cpu_count()} cores), "
          f"{args.trials} trials each way, {args.turns} commands per trial\n")  # fmt: skip
    print("| harness | trial wall time (median) | agent setup + run (median) |")
    print("|---|---|---|")
    medians = {}
    for label, pairs in times.items():
        medians[label] = [statistics.median(p[i] for p in pairs) for i in (0, 1)]
        print(f"| {label} | {medians[label][0]:.2f} s | {medians[label][1]:.2f} s |")
    added = [medians["in its box"][i] - medians["in the worker"][i] for i in (0, 1)]
    print(f"\nAdded by the box: {added[0]:+.2f} s per trial (wall), {added[1]:+.2f} s in the agent's phases.")
    boxed, unboxed = (statistics.median(jobs_wall[k]) for k in ("in its box", "in the worker"))
    print(f"\n8 trials at concurrency 4, median of 3 jobs: {unboxed:.2f} s in the worker, {boxed:.2f} s "
          f"in boxes: {(boxed - unboxed) / 8:+.2f} s per trial.")


if __name__ == "__main__":
    main()
