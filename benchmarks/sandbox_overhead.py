"""How much does the sandbox cost per trial, and how much does `autoagent eval` add to Harbor?

    uv run python benchmarks/sandbox_overhead.py [--trials 32] [--repeats 3]

1. Sandbox lifecycle alone (start, one `true`, stop) for a trivial task, at
   concurrency 1, 4 and 16: trials per second and wall time per trial; and the
   latency of one command (`true`) in a running sandbox.
2. Whole Harbor trials of the same trivial task (oracle agent, verifier writes 1)
   through `autoagent eval`, at concurrency 1, 4 and 16: trials per second.
3. `autoagent eval` against plain `harbor run -e autoagent.sandbox:Sandbox` on the
   same tasks, alternated `--repeats` times: median wall time of each and the ratio.
Prints a Markdown report (the figures in BENCHMARKS.md come from it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from harbor.models.task.config import EnvironmentConfig
from harbor.models.trial.paths import TrialPaths

from autoagent.sandbox import Sandbox

BIN = Path(sys.executable).parent


def trivial_tasks(root: Path, count: int) -> Path:
    for index in range(count):
        task = root / f"trivial-{index:03d}"
        for sub in ("environment", "solution", "tests"):
            (task / sub).mkdir(parents=True)
        (task / "task.toml").write_text('version = "1.0"\n')
        (task / "instruction.md").write_text("Do nothing.\n")
        (task / "environment" / "Dockerfile").write_text("FROM debian:bookworm-slim\nWORKDIR /app\n")
        (task / "solution" / "solve.sh").write_text("#!/bin/bash\ntrue\n")
        (task / "tests" / "test.sh").write_text("#!/bin/bash\necho 1 > /logs/verifier/reward.txt\n")
    return root


async def lifecycle(task: Path, scratch: Path) -> None:
    trial = TrialPaths(scratch / uuid.uuid4().hex)
    trial.mkdir()
    box = Sandbox(task / "environment", "trivial", f"bench__{uuid.uuid4().hex[:8]}__env",
                  trial, EnvironmentConfig())  # fmt: skip
    await box.start(force_build=False)
    await box.exec("true")
    await box.stop(delete=True)


async def exec_latency(task: Path, scratch: Path, count: int = 50) -> float:
    """Median seconds for one `exec("true")` in a running sandbox."""
    trial = TrialPaths(scratch / uuid.uuid4().hex)
    trial.mkdir()
    box = Sandbox(task / "environment", "trivial", f"bench__{uuid.uuid4().hex[:8]}__env",
                  trial, EnvironmentConfig())  # fmt: skip
    await box.start(force_build=False)
    try:
        durations = []
        for _ in range(count):
            started = time.perf_counter()
            await box.exec("true")
            durations.append(time.perf_counter() - started)
    finally:
        await box.stop(delete=True)
    return statistics.median(durations)


async def sandbox_rate(task: Path, scratch: Path, trials: int, concurrency: int) -> tuple[float, float]:
    gate = asyncio.Semaphore(concurrency)
    durations: list[float] = []

    async def one() -> None:
        async with gate:
            started = time.perf_counter()
            await lifecycle(task, scratch)
            durations.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(trials)))
    wall = time.perf_counter() - started
    return trials / wall, statistics.mean(durations)


def timed(command: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    completed = subprocess.run(command, cwd=cwd, capture_output=True, text=True,
                               env={**os.environ, "HARBOR_TELEMETRY": "0"})  # fmt: skip
    if completed.returncode != 0:
        raise SystemExit(f"{command[0]} failed:\n{completed.stdout}\n{completed.stderr}")
    return time.perf_counter() - started


def ours(tasks: Path, jobs: Path, n: int) -> list[str]:
    return [str(BIN / "autoagent"), "eval", str(tasks), "-a", "oracle", "-n", str(n),
            "--jobs-dir", str(jobs)]  # fmt: skip


def plain_harbor(tasks: Path, jobs: Path, n: int) -> list[str]:
    return [str(BIN / "harbor"), "run", "-p", str(tasks), "-a", "oracle", "-n", str(n),
            "-e", "autoagent.sandbox:Sandbox", "-o", str(jobs),
            "--job-name", f"plain-{uuid.uuid4().hex[:8]}", "-y", "-q"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("HARBOR_TELEMETRY", "0")
    with tempfile.TemporaryDirectory(prefix="autoagent-bench-") as temporary:
        root = Path(temporary)
        tasks = trivial_tasks(root / "tasks", args.trials)
        jobs = root / "jobs"
        print(f"# Sandbox overhead ({platform.machine()}, {os.cpu_count()} cores, "
              f"{args.trials} trivial trials)\n")  # fmt: skip
        latency = asyncio.run(exec_latency(tasks / "trivial-000", root))
        print(f"One command in a running sandbox (`exec('true')`), median of 50: {latency * 1000:.1f} ms\n")
        print("| concurrency | sandbox start+exec+stop: trials/s | s per trial | "
              "whole Harbor trials via `autoagent eval`: trials/s |")  # fmt: skip
        print("|---|---|---|---|")
        for n in (1, 4, 16):
            rate, per_trial = asyncio.run(
                sandbox_rate(tasks / "trivial-000", root, args.trials, n)
            )
            wall = timed(ours(tasks, jobs, n), root)
            print(f"| {n} | {rate:.1f} | {per_trial:.3f} | {args.trials / wall:.1f} |")

        ours_times, harbor_times = [], []
        for _ in range(args.repeats):
            harbor_times.append(timed(plain_harbor(tasks, jobs, 4), root))
            ours_times.append(timed(ours(tasks, jobs, 4), root))
        a, b = statistics.median(ours_times), statistics.median(harbor_times)
        print(f"\n`autoagent eval` vs plain `harbor run`, same sandbox, {args.trials} trials, "
              f"-n 4, median of {args.repeats}: {a:.2f} s vs {b:.2f} s, ratio {a / b:.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
