"""Nothing of a sandbox outlives it: after a stop, a cancelled start, or a kill -9 of its
owner followed by the next start's sweep, no process, mount, cgroup or staging dir."""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from autoagent.sandbox import cgroups, image
from autoagent.sandbox.jail import Jail
from tests.sandbox.test_environment import make_sandbox

pytestmark = pytest.mark.usefixtures("needs_sandbox")


def _cgroup_dirs(owner: int) -> list[Path]:
    """The sandbox cgroups that `owner` made, in every hierarchy."""
    roots = [cgroups.ROOT] + [cgroups.ROOT / c for c in ("pids", "cpu", "memory")]
    return [p for root in roots for p in root.rglob(f"autoagent/{owner}.*-*") if p.is_dir()]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in os.listdir("/proc"):
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = Path(f"/proc/{entry}/status").read_text().split("State:")[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state != "Z" and int(entry) != os.getpid():
            found.append(f"{entry}: {cmdline}")
    return found


def _assert_nothing_left(owner: int, path: Path) -> None:
    deadline = time.monotonic() + 10
    while _processes_mentioning(str(path)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _processes_mentioning(str(path)) == []
    assert _cgroup_dirs(owner) == []
    assert str(path) not in Path("/proc/self/mountinfo").read_text()


async def test_a_cancelled_start_leaves_nothing_running(tmp_path):
    cancelled = 0
    for step in range(12):  # cancelled at ever later points of the start
        root = tmp_path / f"cancel-{step}"
        jail = Jail(f"cancel-{step}", root / "scratch", image.overlays(tmp_path, None, root / "upper"))
        starting = asyncio.create_task(jail.start())
        await asyncio.sleep(step * 0.004)
        starting.cancel()
        try:
            await starting
        except asyncio.CancelledError:
            cancelled += 1
        else:
            await jail.stop()
        _assert_nothing_left(os.getpid(), root)
    assert cancelled >= 3


async def test_a_stopped_sandbox_leaves_no_cgroup_or_process(tmp_path):
    box = make_sandbox(tmp_path)
    await box.start(force_build=False)
    await box.exec("setsid sleep 600 >/dev/null 2>&1 < /dev/null &")
    trial_dir = box._trial_dir
    assert _cgroup_dirs(os.getpid())  # every sandbox has one, limits asked for or not
    await box.stop(delete=True)
    _assert_nothing_left(os.getpid(), trial_dir)


OWNER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    sys.path.insert(0, sys.argv[2])
    from tests.sandbox.test_environment import make_sandbox

    async def main():
        run = "RUN sleep " + str(300 + 13)  # only the build itself shows the whole command
        box = make_sandbox(Path(sys.argv[1]), "FROM debian:bookworm-slim\\n" + run + "\\n")
        await box.start(force_build=False)

    asyncio.run(main())
""")


async def test_a_killed_owners_build_is_swept_by_the_next_start(tmp_path):
    state = Path(os.environ["AUTOAGENT_SANDBOX_DIR"])
    repo = Path(__file__).resolve().parents[2]
    (state / "layers").mkdir(parents=True, exist_ok=True)
    before = set((state / "layers").glob(".build-*"))
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path), str(repo)])
    try:
        deadline = time.monotonic() + 60
        while not _processes_mentioning("sleep 313"):
            assert time.monotonic() < deadline and owner.poll() is None
            time.sleep(0.1)
        staging = sorted(set((state / "layers").glob(".build-*")) - before)
        assert staging, (_processes_mentioning("sleep 313"), list((state / "layers").iterdir()))
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    box = make_sandbox(tmp_path)  # the next start, in another process, sweeps
    await box.start(force_build=False)
    await box.stop(delete=True)
    assert not [p for p in staging if p.exists()]
    _assert_nothing_left(owner.pid, staging[0])
    assert _processes_mentioning("sleep 313") == []


def test_the_sweep_leaves_cgroups_of_other_pid_namespaces_alone(tmp_path):
    """A pid means nothing in another PID namespace (a container, a nested run sharing the
    cgroup tree): its sandboxes must not be killed as if their owner had died."""
    group = cgroups.Cgroup.create("probe", None, None, pids=64)
    assert group.directories, "no cgroup could be made here"
    parent = group.directories[0].parent
    ours = cgroups.owner().partition(".")[2]
    dead = 2**22 + 12345  # above any pid this machine hands out
    foreign = parent / f"{dead}.{int(ours) + 1}-another-namespace"
    gone = parent / f"{dead}.{ours}-ours-and-dead"
    foreign.mkdir()
    gone.mkdir()
    try:
        cgroups.sweep()
        assert foreign.exists() and not gone.exists()
    finally:
        for leftover in (foreign, gone):
            with contextlib.suppress(OSError):
                leftover.rmdir()
        group.remove()
