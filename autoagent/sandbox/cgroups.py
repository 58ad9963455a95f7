"""CPU, memory and process-count limits for one sandbox, with cgroup v1 or v2.

Each sandbox gets a child cgroup of the calling process's own (under `autoagent/`),
so a limit set on the caller (a CI job, a systemd slice) still applies, and every
process of the sandbox can be found and killed through it. The `pids` limit is
always set: one trial's fork bomb must not starve the others. When the host does
not let us create or configure one (no root, no delegated controller),
`Cgroup.create` returns a cgroup that enforces nothing and says which limit it
could not set.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000


@dataclass
class Cgroup:
    directories: list[Path] = field(default_factory=list)
    unenforced: list[str] = field(default_factory=list)  # limits asked for but not set

    @property
    def procs_files(self) -> list[Path]:
        return [directory / "cgroup.procs" for directory in self.directories]

    @classmethod
    def create(
        cls, name: str, cpus: float | None, memory_mb: int | None, pids: int | None = None
    ) -> Cgroup:
        sweep()
        group = cls()
        name = f"{owner()}-{name}"  # the owner, for `sweep`
        wanted = {"pids": pids, "cpu": cpus, "memory": memory_mb}
        for controller, value in wanted.items():
            if value is None:
                continue
            try:
                group._limit(name, controller, value)
            except OSError as error:
                group.unenforced.append(f"{controller} ({error.strerror or error})")
        return group

    def _limit(self, name: str, controller: str, value: float) -> None:
        if (ROOT / "cgroup.controllers").exists():  # pure cgroup v2
            directory = _v2_directory(name, controller)
            if controller == "pids":
                (directory / "pids.max").write_text(str(int(value)))
            elif controller == "cpu":
                quota = max(1000, int(value * CPU_PERIOD_US))
                (directory / "cpu.max").write_text(f"{quota} {CPU_PERIOD_US}")
            else:
                (directory / "memory.max").write_text(str(int(value) * 2**20))
                with contextlib.suppress(OSError):
                    (directory / "memory.swap.max").write_text("0")
        else:
            directory = _v1_directory(name, controller)
            if controller == "pids":
                (directory / "pids.max").write_text(str(int(value)))
            elif controller == "cpu":
                (directory / "cpu.cfs_period_us").write_text(str(CPU_PERIOD_US))
                quota = max(1000, int(value * CPU_PERIOD_US))
                (directory / "cpu.cfs_quota_us").write_text(str(quota))
            else:
                (directory / "memory.limit_in_bytes").write_text(str(int(value) * 2**20))
        if directory not in self.directories:
            self.directories.append(directory)

    def join_command(self, argv: list[str]) -> list[str]:
        """`argv`, started inside this cgroup: the host's own /bin/sh moves itself in, then
        execs it (nothing of a sandbox runs before that)."""
        if not self.directories:
            return list(argv)
        moves = "; ".join(f"echo $$ > {shlex.quote(str(procs))}" for procs in self.procs_files)
        return ["/bin/sh", "-c", f'{moves}; exec "$@"', "sh", *argv]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files:
            with contextlib.suppress(OSError):
                found.update(int(pid) for pid in procs.read_text().split())
        return found

    def kill(self) -> None:
        """SIGKILL every process inside: at once where cgroup v2 offers `cgroup.kill`."""
        for directory in self.directories:
            with contextlib.suppress(OSError):
                (directory / "cgroup.kill").write_text("1")
                return
        for pid in self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)

    def remove(self, timeout: float = 5.0) -> None:
        """Kill anything still inside, then remove the directories."""
        deadline = time.monotonic() + timeout
        for directory in self.directories:
            while True:
                self.kill()
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # EBUSY while killed processes are reaped
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.02)
            with contextlib.suppress(OSError):  # still in use by other sandboxes
                directory.parent.rmdir()
        self.directories.clear()


def owner() -> str:
    """This process, as cgroup names record it: its pid and its PID namespace. A pid means
    nothing in another namespace (a container, a nested sandbox sharing the cgroup tree)."""
    return f"{os.getpid()}.{os.stat('/proc/self/ns/pid').st_ino}"


def _dead_owner(name: str) -> bool:
    """Whether the cgroup called `name` belongs to a process of our PID namespace that is gone
    (never one of another namespace's, whose pids we cannot see)."""
    pid, _, namespace = name.split("-", 1)[0].partition(".")
    ours = owner().partition(".")[2]
    return pid.isdigit() and namespace == ours and not _alive(int(pid))


def sweep() -> None:
    """Kill and remove the sandboxes' cgroups whose owning process has died."""
    parents = [ROOT / _own_path("") / "autoagent"] if (ROOT / "cgroup.controllers").exists() else []
    for controller in ("pids", "cpu", "memory"):
        with contextlib.suppress(OSError):
            parents.append(ROOT / controller / _own_path(controller) / "autoagent")
    for parent in parents:
        with contextlib.suppress(OSError):
            for directory in parent.iterdir():
                if directory.is_dir() and _dead_owner(directory.name):
                    with contextlib.suppress(OSError):
                        Cgroup([directory]).remove()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def _own_path(controller: str) -> str:
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(",") or (controller == "" and controllers == ""):
            return path.lstrip("/")
    raise OSError(f"this process is in no {controller or 'v2'} cgroup")


def _v1_directory(name: str, controller: str) -> Path:
    mount = ROOT / controller
    if not (mount / "cgroup.procs").exists():
        raise OSError(f"no cgroup v1 {controller} hierarchy at {mount}")
    directory = mount / _own_path(controller) / "autoagent" / name
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def _v2_directory(name: str, controller: str) -> Path:
    parent = ROOT / _own_path("") / "autoagent"
    parent.mkdir(exist_ok=True)
    # Controllers must be enabled on every level between the caller's cgroup and ours.
    for level in (parent.parent, parent):
        enabled = (level / "cgroup.subtree_control").read_text().split()
        if controller not in enabled:
            (level / "cgroup.subtree_control").write_text(f"+{controller}")
    directory = parent / name
    directory.mkdir(exist_ok=True)
    return directory
