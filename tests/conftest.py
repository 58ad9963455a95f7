"""Shared fixtures. The sandbox needs root and bubblewrap, the report tests Chromium;
CI sets AUTOAGENT_REQUIRE_ALL=1 so that a missing prerequisite fails instead of skipping."""

import contextlib
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from autoagent.sandbox.environment import host_problem

REPO = Path(__file__).resolve().parent.parent
EXAMPLE_TASKS = REPO / "autoagent" / "examples" / "tasks"
REAL_TASKS = REPO / "tests" / "data" / "real-tasks"
SHARED_TASKS = Path(os.environ.get("AUTOAGENT_SHARED_TASKS", REPO.parent / "shared" / "tasks"))


@pytest.fixture
def scripts(tmp_path, monkeypatch):
    """A directory of scripted-model conversations (AUTOAGENT_SCRIPTS) for one test to fill."""
    directory = tmp_path / "scripts"
    directory.mkdir()
    monkeypatch.setenv("AUTOAGENT_SCRIPTS", str(directory))
    return directory


@pytest.fixture(scope="session", autouse=True)
def sandbox_state(tmp_path_factory):
    """One layer cache for the whole session; trial roots are removed by the tests. At the
    end, nothing of any sandbox may be left running: no process, no cgroup of ours."""
    state = tmp_path_factory.mktemp("sandbox-state")
    os.environ["AUTOAGENT_SANDBOX_DIR"] = str(state)
    os.environ.setdefault("HARBOR_TELEMETRY", "0")
    yield state
    leftovers = _leftovers(state)
    shutil.rmtree(state, ignore_errors=True)
    if leftovers:
        pytest.fail("The test session left sandboxes behind:\n" + "\n".join(leftovers))


def _leftovers(state: Path, wait: float = 10.0) -> list[str]:
    """Processes that still name the session's sandbox state (bubblewrap, entrances, pasta),
    and cgroups of this process or of dead owners that the next start's sweep would not clear."""
    from autoagent.harness_box import pool
    from autoagent.sandbox import cgroups

    pool.close_all()  # spare harness boxes of tests that ran BoxedAgent in this process
    deadline = time.monotonic() + wait
    while True:
        found = []
        for proc in Path("/proc").iterdir():
            try:
                cmdline = (proc / "cmdline").read_bytes()
                status = (proc / "status").read_text()
            except OSError:
                continue
            if proc.name.isdigit() and str(state).encode() in cmdline and "\nState:\tZ" not in status:
                shown = cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]
                found.append(f"process {proc.name}: {shown}")
        cgroups.sweep()  # what the next start does: dead owners' cgroups go
        mine = cgroups.owner() + "-"
        for root in [cgroups.ROOT] + [cgroups.ROOT / c for c in ("pids", "cpu", "memory")]:
            with contextlib.suppress(OSError):
                found += [f"cgroup {p}" for p in root.rglob(f"autoagent/{mine}*") if p.is_dir()]
        if not found or time.monotonic() > deadline:
            return sorted(set(found))
        time.sleep(0.2)


def _missing(problem: str | None) -> None:
    if problem:
        if os.environ.get("AUTOAGENT_REQUIRE_ALL") == "1":
            pytest.fail(problem)
        pytest.skip(problem)


@pytest.fixture
def needs_sandbox():
    _missing(host_problem())


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


@pytest.fixture
def needs_chromium():
    _missing(None if Path(CHROMIUM).exists() else "Chromium is not installed (apt-get install chromium)")


def write_task(root: Path, name: str, *, test: str | None, solve: str = "true",
               dockerfile: str = "FROM debian:bookworm-slim\nWORKDIR /app\n",
               toml: str = "[verifier]\ntimeout_sec = 60.0\n") -> Path:
    """A minimal Harbor task; `test=None` leaves out tests/test.sh."""
    task = root / name
    (task / "environment").mkdir(parents=True)
    (task / "solution").mkdir()
    (task / "tests").mkdir()
    (task / "task.toml").write_text(toml)
    (task / "instruction.md").write_text(f"Task {name}.\n")
    (task / "environment" / "Dockerfile").write_text(dockerfile)
    (task / "solution" / "solve.sh").write_text(f"#!/bin/bash\n{solve}\n")
    if test is not None:
        (task / "tests" / "test.sh").write_text(f"#!/bin/bash\nmkdir -p /logs/verifier\n{test}\n")
    return task


def outside_address() -> str:
    """A non-loopback IPv4 address of this machine, for a test server that a sandbox must
    reach: a sandbox reaches it as it would the outside, never the host's 127.0.0.1."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True).stdout.split()  # fmt: skip
    addresses = [word.split("/")[0] for before, word in zip(out, out[1:]) if before == "inet"]
    if not addresses:
        pytest.skip("this machine has no non-loopback IPv4 address to serve from")
    return addresses[0]


def flat(text: str) -> str:
    """Console output with Rich's line wrapping undone."""
    return " ".join(text.split())
