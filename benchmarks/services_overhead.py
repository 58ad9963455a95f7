"""What a Compose task's services cost per trial.

    uv run python benchmarks/services_overhead.py [--trials 10]

The same task with 0, 1 and 3 services beside main (each built from a one-line
Dockerfile and started with `sleep infinity`; the last one with a healthcheck main waits
for), on the host's userland, with layers cached by a first untimed trial. Per trial:
start, one `true` in main, stop; median over `--trials`, the variants alternated so
that a busy machine weighs on all alike. Prints a Markdown table (BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

from harbor.models.task.config import EnvironmentConfig
from harbor.models.trial.paths import TrialPaths

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autoagent.sandbox import Sandbox  # noqa: E402

SERVICE = "  s{i}:\n    build: ./service\n    command: [sleep, infinity]\n"
HEALTHY = "    healthcheck: {test: 'true', interval: 100ms, start_interval: 100ms, start_period: 5s}\n"


def task(root: Path, services: int) -> Path:
    environment = root / f"services-{services}" / "environment"
    (environment / "service").mkdir(parents=True)
    (environment / "Dockerfile").write_text("FROM debian:bookworm-slim\nWORKDIR /app\n")
    (environment / "service" / "Dockerfile").write_text("FROM debian:bookworm-slim\n")
    if services:
        last = f"s{services - 1}"
        compose = "services:\n  main:\n    depends_on: {" + last + ": {condition: service_healthy}}\n"
        compose += "".join(SERVICE.format(i=i) for i in range(services)) + HEALTHY
        (environment / "docker-compose.yaml").write_text(compose)
    return environment


async def one_trial(environment: Path, scratch: Path) -> float:
    trial = TrialPaths(scratch / uuid.uuid4().hex[:8])
    trial.mkdir()
    box = Sandbox(environment_dir=environment, environment_name="bench",
                  session_id=f"bench__{uuid.uuid4().hex[:6]}__env", trial_paths=trial,
                  task_env_config=EnvironmentConfig())  # fmt: skip
    box.options.base = "host"  # no registry lookups in the measurement
    started = time.perf_counter()
    await box.start(force_build=False)
    try:
        assert (await box.exec("true")).return_code == 0
    finally:
        await box.stop(delete=True)
    return time.perf_counter() - started


async def main(trials: int) -> None:
    counts = (0, 1, 3)
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        os.environ.setdefault("AUTOAGENT_SANDBOX_DIR", str(root / "state"))
        environments = {n: task(root / "tasks", n) for n in counts}
        for environment in environments.values():  # build and cache the layers, untimed
            await one_trial(environment, root)
        times: dict[int, list[float]] = {n: [] for n in counts}
        for _ in range(trials):
            for n in counts:
                times[n].append(await one_trial(environments[n], root))
                print(".", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    print(f"| services beside main | per trial: start, `true`, stop (median of {trials}) s |")
    print("|---|---|")
    for n in counts:
        print(f"| {n} | {statistics.median(times[n]):.3f} |")
    extra = (statistics.median(times[3]) - statistics.median(times[0])) / 3
    print(f"\nEach service adds {extra:.3f} s per trial (the last one's healthcheck wait included).")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=10)
    asyncio.run(main(parser.parse_args().trials))
