"""What a real base image costs: the first trial on a new image, and every trial after.

    uv run python benchmarks/image_overhead.py [--trials 20]

Builds the tests' Debian-flavoured image (a few MB) and a larger one with the host's
Python standard library in it (tens of MB), pushes both to Debian's docker-registry
on 127.0.0.1, then measures, with a fresh sandbox state dir:
1. the first trial on each image: pull (skopeo) + unpack (umoci), then the sandbox's
   start, one exec and stop;
2. per-trial overhead once the image is cached (start, one `true`, stop), median
   over `--trials`, against the same Dockerfile on the host's userland (base=host),
   the two alternated so that a busy machine weighs on both alike.
Prints a Markdown report (the figures in BENCHMARKS.md come from it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from harbor.models.task.config import EnvironmentConfig
from harbor.models.trial.paths import TrialPaths

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from autoagent.sandbox import Sandbox, oci  # noqa: E402
from tests.sandbox import oci_images  # noqa: E402


def python_rootfs(root: Path) -> Path:
    """The Debian-flavoured image plus the host's python3 and its standard library."""
    oci_images.debian_rootfs(root)
    python = os.path.realpath(shutil.which("python3", path="/usr/bin"))
    shutil.copy2(python, root / "usr/bin/python3")
    version = Path(python).name
    shutil.copytree(f"/usr/lib/{version}", root / "usr/lib" / version, symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "test", "dist-packages"))  # fmt: skip
    libraries = subprocess.run(["ldd", python], capture_output=True, text=True).stdout
    for library in re.findall(r"(/\S+) \(0x", libraries):
        target = root / library.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists():
            shutil.copy2(os.path.realpath(library), target)
    return root


def size_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink()) / 2**20


async def lifecycle(environment: Path, scratch: Path, base: str) -> float:
    trial = TrialPaths(scratch / uuid.uuid4().hex)
    trial.mkdir()
    box = Sandbox(environment, "bench", f"bench__{uuid.uuid4().hex[:8]}__env", trial,
                  EnvironmentConfig(), base=base)  # fmt: skip
    started = time.perf_counter()
    await box.start(force_build=False)
    await box.exec("true")
    await box.stop(delete=True)
    return time.perf_counter() - started


def environment(root: Path, reference: str) -> Path:
    directory = root / f"env-{uuid.uuid4().hex[:6]}"
    directory.mkdir()
    (directory / "Dockerfile").write_text(f"FROM {reference}\nWORKDIR /app\n")
    return directory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="autoagent-bench-") as temporary:
        root = Path(temporary)
        os.environ["AUTOAGENT_SANDBOX_DIR"] = str(root / "state")
        rootfs = {
            "debian": oci_images.debian_rootfs(root / "debian"),
            "python": python_rootfs(root / "python"),
        }
        print(f"# Real base images ({platform.machine()}, {os.cpu_count()} cores)\n")
        with oci_images.registry(root / "registry") as registry:
            references = {}
            for name, directory in rootfs.items():
                image = oci_images.oci_layout(directory, root / "layout", name)
                references[name] = oci_images.push(image, registry, f"{name}:1")
            print("| image | size | pull + unpack s | then start, exec, stop s |")
            print("|---|---|---|---|")
            for name, reference in references.items():
                started = time.perf_counter()
                oci.ensure(reference, root / "state", {})
                pulled = time.perf_counter() - started
                first = asyncio.run(lifecycle(environment(root, reference), root, "image"))
                print(f"| {name} | {size_mb(rootfs[name]):.0f} MB | {pulled:.2f} | {first:.2f} |")
            print(f"\n| base | per trial once cached: start, `true`, stop (median of {args.trials}) s |")
            print("|---|---|")
            env = environment(root, references["debian"])
            times: dict[str, list[float]] = {"image": [], "host": []}
            for base in times:
                asyncio.run(lifecycle(env, root, base))  # warm: skeleton, masks
            for _ in range(args.trials):
                for base in times:
                    times[base].append(asyncio.run(lifecycle(env, root, base)))
            for base, label in (("image", "the debian image"), ("host", "the host's userland")):
                print(f"| {label} | {statistics.median(times[base]):.3f} |")


if __name__ == "__main__":
    main()
