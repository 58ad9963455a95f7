"""One long-lived process tree in its own namespaces, on a root built from overlays.

`Jail.start` mounts copy-on-write overlays in a private mount namespace (so no mount
is ever visible on the host), then hands them to bubblewrap, which pivots into them
with fresh PID, IPC, UTS and network namespaces. Every command runs in the
sandbox's own network namespace; while `network` is on, `network.Uplink` connects
it to the outside (see `network.py`). A jail started with `network_of` joins another
jail's network namespace instead (the services of a Compose task share the main
sandbox's, as the containers of a pod do) and follows its connection. bubblewrap's
init stays as PID 1 until `stop`.
Each `run` asks the sandbox's entrance (`entrance.py`/`enter.py`: host code in the
host's own interpreter) to start the command: it joins those namespaces and drops
to Docker's default capabilities before any file of the sandbox executes (a trial
may replace any of them), and starts the command from an empty environment, so
processes started in the background survive between calls and the host's
variables never leak in. Nothing here knows about Harbor.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shlex
import shutil
import signal
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from autoagent.sandbox.cgroups import Cgroup
from autoagent.sandbox.entrance import Entrance, EntranceError
from autoagent.sandbox.network import Uplink

# Docker's default capability set, minus MKNOD: without a device cgroup, a root that
# can create device nodes could open the host's disks.
CAPABILITIES = (
    "chown", "dac_override", "fsetid", "fowner", "net_raw", "setgid", "setuid",
    "setfcap", "setpcap", "net_bind_service", "sys_chroot", "kill", "audit_write",
)  # fmt: skip
CAPABILITY_NUMBERS = {
    "chown": 0, "dac_override": 1, "fowner": 3, "fsetid": 4, "kill": 5, "setgid": 6,
    "setuid": 7, "setpcap": 8, "net_bind_service": 10, "net_raw": 13, "sys_chroot": 18,
    "audit_write": 29, "setfcap": 31,
}  # fmt: skip
OUTPUT_LIMIT = 10 * 2**20  # bytes of stdout/stderr returned per call; the rest is cut
READY = b"sandbox-ready\n"
PIDS_LIMIT = 4096


class JailError(RuntimeError):
    """The sandbox could not be started or used."""


class CommandTimeoutError(RuntimeError):
    """A command outlived its timeout and was killed."""


@dataclass(frozen=True)
class Overlay:
    target: str  # where it appears inside the sandbox: "/" or "/usr", ...
    lowers: tuple[Path, ...]  # read-only layers, topmost first
    upper: Path  # where this sandbox's writes land


@dataclass(frozen=True)
class Bind:
    """A host directory or file seen inside the sandbox at `target` (a volume, a user mount)."""

    source: Path
    target: str
    read_only: bool = False


@dataclass
class Completed:
    return_code: int
    stdout: str
    stderr: str


@dataclass
class Account:
    uid: int
    gid: int
    home: str
    groups: list[int] = field(default_factory=list)


@dataclass
class Jail:
    name: str  # unique among running sandboxes: names its cgroup
    directory: Path  # host-side scratch: mount points, overlay work dirs, output files
    overlays: list[Overlay]
    # Whether the sandbox's network namespace reaches the outside (never the host's
    # loopback); change it with `set_network`, for every process of the sandbox at once.
    network: bool = False
    hostname: str = "sandbox"
    env: dict[str, str] = field(default_factory=dict)  # every command starts with this
    cpus: float | None = None
    memory_mb: int | None = None
    pids: int | None = PIDS_LIMIT  # processes and threads at once, all of the sandbox's
    binds: list[Bind] = field(default_factory=list)
    network_of: Jail | None = None  # share this running jail's network namespace (and uplink)

    _process: asyncio.subprocess.Process | None = field(default=None, init=False)
    _init_pid: int | None = field(default=None, init=False)
    _init_fd: int | None = field(default=None, init=False)  # a pidfd: signals never reach a reused pid
    _lifeline: int | None = field(default=None, init=False)
    _cgroup: Cgroup = field(default_factory=Cgroup, init=False)
    _entrance: Entrance = field(default_factory=Entrance, init=False)
    _accounts: dict[str, Account] = field(default_factory=dict, init=False)
    _uplink: Uplink | None = field(default=None, init=False)

    @property
    def init_pid(self) -> int | None:
        """The sandbox's first process, seen from the host (its /proc/<pid>/root is the root)."""
        return self._init_pid

    def alive(self) -> bool:
        """Whether the sandbox's first process still lives (it may die under us: killed,
        or its cgroup removed by something else)."""
        if self._init_fd is None:
            return False
        if select.select([self._init_fd], [], [], 0)[0]:  # a pidfd reads ready once its process ended
            return False
        return self._process is None or self._process.returncode is None

    @property
    def running(self) -> bool:
        return self._init_pid is not None

    @property
    def unenforced_limits(self) -> list[str]:
        return list(self._cgroup.unenforced)

    async def start(self) -> None:
        for tool in ("bwrap", "unshare", "setpriv"):
            if shutil.which(tool) is None:
                raise JailError(
                    f"`{tool}` is not installed; the sandbox needs bubblewrap and "
                    "util-linux (Debian/Ubuntu: apt-get install bubblewrap util-linux)"
                )
        self.directory.mkdir(parents=True, exist_ok=True)
        (self.directory / "io").mkdir(exist_ok=True)
        self._cgroup = Cgroup.create(self.name, self.cpus, self.memory_mb, self.pids)
        try:
            await self._launch()
        except BaseException:  # a failure or a cancellation: leave nothing running
            await asyncio.shield(self.stop())
            raise

    async def _launch(self) -> None:
        info_read, info_write = os.pipe()
        # The sandbox lives while this pipe is open: when we close it, or our process
        # dies however it dies, its first process reads end-of-file and everything ends.
        lifeline, self._lifeline = os.pipe()
        shared = self._shared_namespace()
        join = [] if shared is None else ["nsenter", f"--net=/proc/self/fd/{shared}", "--"]
        try:
            self._process = await asyncio.create_subprocess_exec(
                *join, "unshare", "--mount", "--propagation", "private", "--",
                "/bin/sh", "-c", self._launch_script(info_write),
                stdin=lifeline,  # handed down to the sandbox's first process
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,  # a pipe: the first process holds no host file
                pass_fds=(info_write,) if shared is None else (info_write, shared),
                env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            )  # fmt: skip
        finally:
            for fd in (info_write, lifeline, shared):
                if fd is not None:
                    os.close(fd)
        try:
            ready = await asyncio.wait_for(self._process.stdout.readline(), timeout=60)
            info = await asyncio.get_running_loop().run_in_executor(
                None, _read_all, info_read
            )
        finally:
            os.close(info_read)
        if ready != READY:
            detail = (await self._process.stderr.read()).decode(errors="replace").strip()
            await self._process.wait()
            raise JailError(f"the sandbox did not start: {detail or 'no output'}")
        self._init_pid = json.loads(info)["child-pid"]
        self._init_fd = os.pidfd_open(self._init_pid)  # bwrap holds it unreaped until it exits
        await self._entrance.open(self._init_pid, self._cgroup.procs_files, self.directory / "jail.log")
        await self._connect_network()

    # -- network (see network.py) --------------------------------------------------

    def _shared_namespace(self) -> int | None:
        """A descriptor of the network namespace to join, held while checking that the
        jail it came from still lives (its pid cannot have been reused meanwhile)."""
        other = self.network_of
        if other is None:
            return None
        if other.init_pid is None:
            raise JailError("the sandbox whose network this one shares is not running")
        fd = os.open(f"/proc/{other.init_pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        if not other.alive():
            os.close(fd)
            raise JailError("the sandbox whose network this one shares has died")
        return fd

    async def _connect_network(self) -> None:
        if self.network_of is not None:
            return  # the namespace's own jail connects and cuts it
        try:
            self._uplink = Uplink(self._init_pid, self.directory)
            if self.network:
                await self._uplink.connect()
        except BaseException:
            await self.stop()
            raise

    async def set_network(self, on: bool) -> None:
        """Connect or cut the sandbox's network, for the processes already running too."""
        self.network = on
        if self._uplink is not None:
            await (self._uplink.connect() if on else self._uplink.disconnect())

    def _launch_script(self, info_fd: int) -> str:
        lines = ["set -e"]
        for procs in self._cgroup.procs_files:
            lines.append(f"echo $$ > {shlex.quote(str(procs))}")
        binds: list[str] = []
        for index, overlay in enumerate(self.overlays):
            mountpoint = self.directory / "mnt" / str(index)
            work = self.directory / "work" / str(index)
            for path in (*overlay.lowers, overlay.upper, work, mountpoint):
                if any(c in str(path) for c in ":,"):
                    raise JailError(f"overlay paths cannot contain ':' or ',': {path}")
            options = (
                f"lowerdir={':'.join(map(str, overlay.lowers))},"
                f"upperdir={overlay.upper},workdir={work}"
            )
            lines.append(f"mkdir -p {work} {mountpoint} {overlay.upper}")
            lines.append(f"mount -t overlay overlay -o {shlex.quote(options)} {mountpoint}")
            binds += ["--bind", str(mountpoint), overlay.target]
        for bind in self.binds:
            binds += ["--ro-bind" if bind.read_only else "--bind", str(bind.source), bind.target]
        caps = [arg for cap in CAPABILITIES for arg in ("--cap-add", f"CAP_{cap.upper()}")]
        bwrap = [
            "bwrap", "--die-with-parent", "--new-session",
            "--unshare-pid", "--unshare-ipc", "--unshare-uts",
            *(["--unshare-net"] if self.network_of is None else []),
            "--hostname", self.hostname,
            *binds,
            "--proc", "/proc",
            "--ro-bind", "/proc/sys", "/proc/sys",  # sysctls are mostly host-wide
            "--ro-bind", "/sys", "/sys",
            "--dev", "/dev", "--perms", "1777", "--tmpfs", "/dev/shm",
            "--tmpfs", "/run",
            "--cap-drop", "ALL", *caps,
            "--clearenv", "--setenv", "PATH", "/usr/sbin:/usr/bin:/sbin:/bin",
            "--info-fd", str(info_fd), "--chdir", "/",
            "--", "/bin/sh", "-c",
            f"printf '{READY.decode().strip()}\\n'; while read -r _; do :; done",
        ]  # fmt: skip
        # bubblewrap's --die-with-parent covers its child only: a bubblewrap still setting
        # up when we die would wait forever. (A host tool, run before anything of the sandbox.)
        lines.append("exec setpriv --pdeathsig KILL -- " + shlex.join(bwrap))
        return "\n".join(lines)

    async def account(self, user: str | int) -> Account:
        key = str(user)
        if key not in self._accounts:
            # What the sandbox answers only decides who its own command runs as.
            script = 'getent passwd "$1" && id -G "$1"'
            result = await self.run(["sh", "-c", script, "sh", key], user=0)
            lines = result.stdout.strip().splitlines()
            fields = lines[0].split(":") if lines else []
            if result.return_code == 0 and len(fields) >= 6 and len(lines) == 2:
                groups = [int(group) for group in lines[1].split()]
                self._accounts[key] = Account(int(fields[2]), int(fields[3]), fields[5], groups)
            elif key.isdigit():
                self._accounts[key] = Account(int(key), int(key), "/", [int(key)])
            else:
                raise JailError(f"user {key!r} does not exist in the sandbox")
        return self._accounts[key]

    async def run(
        self,
        command: str | list[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str = "/",
        user: str | int | None = None,
        stdin: Path | None = None,
        stdout_file: Path | None = None,
        timeout: float | None = None,
    ) -> Completed:
        """Run `command` (a `bash -c` string, or an argv) inside the sandbox."""
        if self._init_pid is None:
            raise JailError("the sandbox is not running")
        argv = ["bash", "-c", command] if isinstance(command, str) else list(command)
        if user in (None, 0, "0", "root"):
            account = Account(0, 0, "/root")
        else:
            account = await self.account(user)
        request = {
            "isolated_network": True,  # always the sandbox's own namespace (network.py connects it)
            "capabilities": [CAPABILITY_NUMBERS[c] for c in CAPABILITIES],
            "uid": account.uid, "gid": account.gid, "groups": account.groups,
            "cwd": cwd,
            "env": {"HOME": account.home, **self.env, **(env or {})},
            "argv": argv,
        }  # fmt: skip
        token = uuid.uuid4().hex
        out_path = stdout_file or self.directory / "io" / f"{token}.out"
        err_path = self.directory / "io" / f"{token}.err"
        try:
            with contextlib.ExitStack() as files:
                streams = (
                    files.enter_context(open(stdin or os.devnull, "rb")).fileno(),
                    files.enter_context(open(out_path, "wb")).fileno(),
                    files.enter_context(open(err_path, "wb")).fileno(),
                )
                command = await self._entrance.start(request, streams)
            try:
                code = await asyncio.wait_for(command.wait(), timeout)
            except TimeoutError:
                await command.kill()
                raise CommandTimeoutError(f"Command timed out after {timeout} seconds") from None
            except asyncio.CancelledError:
                await asyncio.shield(command.kill())
                raise
        except EntranceError as error:
            raise JailError(str(error)) from None
        finally:
            stderr = _read_capped(err_path)
            stdout = "" if stdout_file else _read_capped(out_path)
            for path in (err_path, None if stdout_file else out_path):
                if path:
                    path.unlink(missing_ok=True)
        return Completed(code, stdout, stderr)

    async def stop(self) -> None:
        """Kill every process of the sandbox; its mounts go with its mount namespace."""
        uplink, self._uplink = self._uplink, None
        cut = asyncio.ensure_future(uplink.close()) if uplink else None  # meanwhile
        await self._entrance.close()
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None
        if self._init_pid is not None:
            if self._init_fd is not None:  # never a bare pid: it may belong to another process by now
                with contextlib.suppress(ProcessLookupError):
                    signal.pidfd_send_signal(self._init_fd, signal.SIGKILL)
                # The rest at once: a command still running (a Compose service's, one cut
                # short) would otherwise hold bubblewrap up for a second or two.
                self._cgroup.kill()
                os.close(self._init_fd)
                self._init_fd = None
            self._init_pid = None
        elif self._process is not None and self._process.returncode is None:
            # Cancelled while starting: bubblewrap takes its first process with it.
            with contextlib.suppress(ProcessLookupError):
                self._process.kill()
        if self._process is not None:
            # bubblewrap reaps its init and exits; killing it first would orphan a zombie.
            try:
                await asyncio.wait_for(self._process.wait(), timeout=10)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self._process.kill()
                await self._process.wait()
            self._process = None
        await asyncio.get_running_loop().run_in_executor(None, self._cgroup.remove)
        if cut is not None:
            await cut


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _read_capped(path: Path, limit: int = OUTPUT_LIMIT) -> str:
    """The output, or its head and tail with a note of how much was cut."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return ""
    with open(path, "rb") as file:
        if size <= limit:
            return file.read().decode(errors="replace")
        head = file.read(limit // 2)
        file.seek(size - limit // 2)
        tail = file.read()
    cut = size - len(head) - len(tail)
    note = f"\n[... {cut} bytes of output cut by the sandbox ...]\n".encode()
    return (head + note + tail).decode(errors="replace")
