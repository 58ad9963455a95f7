"""The way into a running sandbox: commands start here with no host privilege left.

`Entrance` (entrance.py) starts this file once per sandbox with the host's own
interpreter (`python -I -S enter.py SPEC`): nothing here is looked up inside the
sandbox, whose files a trial may have replaced (`setpriv`, `env`, the dynamic loader,
libc). This process opens the sandbox's namespaces, root and cgroups, joins its IPC,
UTS and PID namespaces, and stays on the host's filesystem. For each request on its
socket (a command, and the host files for its standard streams) it forks; the
child (in the sandbox's PID namespace: it applies to children) joins the cgroups,
enters the mount namespace, chroots, drops to Docker's default capabilities and the
command's user, and only then executes a file of the sandbox. Starting a command
costs a fork, not an interpreter. The parent reports each child's pid and, later,
its exit status.

Standard library only, and no import in a child after its chroot: an import there
would read Python files from the sandbox with every privilege still held.
"""

# Started once per sandbox: the modules below are the cheap ones (json would import
# `re`; `socket` and `signal` would import `enum`: their C halves do the same work).
import _signal as signal
import _socket as socket
import ctypes
import marshal
import os
import select
import sys

NAMESPACES = {
    "ipc": os.CLONE_NEWIPC, "uts": os.CLONE_NEWUTS, "net": os.CLONE_NEWNET,
    "pid": os.CLONE_NEWPID, "mnt": os.CLONE_NEWNS,
}  # fmt: skip
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
CAPABILITY_VERSION_3 = 0x20080522
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FAILED = 125  # could not start the command (like `docker exec`'s own failures)
MESSAGE_LIMIT = 16 * 2**20  # a request: the command, its environment, its options


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]  # fmt: skip


_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl
_capset = _libc.capset


def _fail(message: str, code: int = FAILED) -> None:
    os.write(2, f"autoagent sandbox: {message}\n".encode(errors="replace"))
    os._exit(code)


def _check(result: int, what: str) -> None:
    if result != 0:
        _fail(f"{what}: {os.strerror(ctypes.get_errno())}")


def _drop_capabilities(keep: list[int], last_cap: int, root: bool) -> None:
    for cap in range(last_cap + 1):
        if cap not in keep:
            _check(_prctl(PR_CAPBSET_DROP, cap, 0, 0, 0), f"dropping capability {cap}")
    _check(_prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "clearing ambient capabilities")
    if not root:
        return  # changing to a non-root uid clears the permitted and effective sets; see _clear_inheritable
    low = sum(1 << cap for cap in keep if cap < 32)
    high = sum(1 << (cap - 32) for cap in keep if cap >= 32)
    header = _CapHeader(CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)(_CapData(low, low, 0), _CapData(high, high, 0))
    _check(_capset(ctypes.byref(header), data), "setting capabilities")


def _clear_inheritable() -> None:
    """A change of uid leaves the inheritable set as the host started us: cleared here, or a
    file that root inside marked `+ei` (CAP_SETFCAP is Docker's) would hand those to a user."""
    header = _CapHeader(CAPABILITY_VERSION_3, 0)
    _check(_capset(ctypes.byref(header), (_CapData * 2)(_CapData(0, 0, 0), _CapData(0, 0, 0))),
           "clearing inheritable capabilities")  # fmt: skip


def _execute(argv: list[str], env: dict[str, str]) -> None:
    """execvp with the sandbox's PATH; by now nothing here holds a host privilege."""
    if "/" in argv[0]:
        candidates = [argv[0]]
    else:
        path = env.get("PATH") or DEFAULT_PATH
        candidates = [os.path.join(d or ".", argv[0]) for d in path.split(":")]
    denied = None
    for candidate in candidates:
        try:
            os.execve(candidate, argv, env)
        except (FileNotFoundError, NotADirectoryError):
            continue
        except OSError as error:
            denied = denied or error
    if denied is not None:
        _fail(f"{argv[0]}: {denied.strerror}", 126)
    _fail(f"{argv[0]}: command not found", 127)


def _child(request: dict, streams: list[int], sandbox: dict) -> None:
    # Nothing of the sandbox may look into us (/proc/PID/fd, ptrace) until the exec.
    _check(_prctl(PR_SET_DUMPABLE, 0, 0, 0, 0), "hiding from the sandbox")
    # Anything imported from here on would come from the sandbox: allow none.
    sys.path.clear()
    sys.path_hooks.clear()
    sys.meta_path.clear()
    for fd in sandbox["cgroups"]:  # the sandbox's limits count the command, not us
        os.write(fd, str(os.getpid()).encode())
    for target, fd in enumerate(streams):
        os.dup2(fd, target)  # inheritable duplicates; the originals must not reach the command
    for fd in streams:
        if fd > 2:
            os.close(fd)
    os.setsid()  # a process group of its own: the command and its children, killed as one
    if request["isolated_network"]:
        os.setns(sandbox["net"], NAMESPACES["net"])
    os.setns(sandbox["mnt"], NAMESPACES["mnt"])
    os.fchdir(sandbox["root"])
    os.chroot(".")
    uid = request["uid"]
    _drop_capabilities(request["capabilities"], sandbox["last_cap"], root=uid == 0)
    if uid != 0:
        os.setgroups(request["groups"])
        os.setgid(request["gid"])
        os.setuid(uid)
        _clear_inheritable()
    # After the change of user, which would clear it.
    _check(_prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "tying the command to its entrance")
    try:
        os.chdir(request["cwd"])
    except OSError as error:
        _fail(f"cannot change directory to {request['cwd']}: {error.strerror}", 126)
    for number in signal.valid_signals():
        if number not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(number, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    _execute(request["argv"], request["env"])


def _open_sandbox(pid: int, cgroups: list[str]) -> dict:
    sandbox = {name: os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY) for name in NAMESPACES}
    sandbox["root"] = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY)
    with open("/proc/sys/kernel/cap_last_cap") as file:
        sandbox["last_cap"] = int(file.read())
    sandbox["cgroups"] = [os.open(procs, os.O_WRONLY) for procs in cgroups]
    for name in ("ipc", "uts", "pid"):  # the network is chosen per command
        os.setns(sandbox[name], NAMESPACES[name])
    return sandbox


class _Relay:
    """Pipes between one command and the host files it reads and writes: the command
    holds pipes only, never a descriptor of a host file. Output that background
    processes write after the command has exited still drains (into the same files)."""

    def __init__(self, poller: select.poll, files: list[int]) -> None:
        self.poller = poller
        self.source, out, err = files
        stdin_read, self.stdin = os.pipe2(os.O_CLOEXEC)
        out_read, out_write = os.pipe2(os.O_CLOEXEC)
        err_read, err_write = os.pipe2(os.O_CLOEXEC)
        self.child_ends = [stdin_read, out_write, err_write]
        self.outputs = {out_read: out, err_read: err}  # pipe -> host file
        self.pending = b""
        for fd in (self.stdin, out_read, err_read):
            os.set_blocking(fd, False)
            poller.register(fd, select.POLLOUT if fd == self.stdin else select.POLLIN)

    def started(self) -> None:
        for fd in self.child_ends:
            os.close(fd)

    def handle(self, fd: int) -> None:
        if fd == self.stdin:
            self.feed()
        elif fd in self.outputs:  # (not closed earlier in this round)
            self.copy(fd)

    def feed(self) -> None:
        try:
            if not self.pending:
                self.pending = os.read(self.source, 65536)
                if not self.pending:
                    return self.close_stdin()
            self.pending = self.pending[os.write(self.stdin, self.pending):]
        except BlockingIOError:
            pass
        except OSError:  # the command stopped reading
            self.close_stdin()

    def close_stdin(self) -> None:
        if self.stdin is not None:
            self.poller.unregister(self.stdin)
            os.close(self.stdin)
            os.close(self.source)
            self.stdin = None

    def copy(self, fd: int, drain: bool = False) -> None:
        """Move what the pipe holds to its file (all of it if `drain`); close at its end."""
        while True:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                return
            if not chunk:
                self.poller.unregister(fd)
                os.close(fd)
                os.close(self.outputs.pop(fd))
                return
            os.write(self.outputs[fd], chunk)
            if not drain:
                return

    def exited(self) -> None:
        """Everything the command wrote before exiting is in the pipes: move it now."""
        for fd in list(self.outputs):
            self.copy(fd, drain=True)
        self.close_stdin()


def serve(channel: socket.socket, sandbox: dict) -> None:
    """Start the commands asked for; report ("started", id, pid) and ("exited", id, status)."""
    poller = select.poll()
    poller.register(channel, select.POLLIN)
    waiting: dict[int, tuple[int, int, _Relay]] = {}  # pidfd -> (request id, pid, relay)
    relays: dict[int, _Relay] = {}  # pipe -> its relay
    room = socket.CMSG_SPACE(3 * 4)
    while True:
        for fd, _ in poller.poll():
            if fd in relays:
                relays[fd].handle(fd)
            elif fd in waiting:
                ident, pid, relay = waiting.pop(fd)
                poller.unregister(fd)
                os.close(fd)
                _, status = os.waitpid(pid, 0)
                relay.exited()
                channel.send(marshal.dumps(("exited", ident, os.waitstatus_to_exitcode(status))))
            else:
                data, ancillary, _, _ = channel.recvmsg(MESSAGE_LIMIT, room)
                if not data:
                    return  # the sandbox is being stopped
                files = [fd for _, _, fds in ancillary for fd in _fds(fds)]
                for fd in files:  # received without close-on-exec: no command may inherit them
                    os.set_inheritable(fd, False)
                request = marshal.loads(data)
                relay = _Relay(poller, files)
                pid = os.fork()
                if pid == 0:
                    try:
                        _child(request, relay.child_ends, sandbox)
                    except BaseException as error:  # noqa: BLE001 - never fall back into the loop
                        _fail(f"cannot start the command: {type(error).__name__}: {error}")
                relay.started()
                relays.update(dict.fromkeys([relay.stdin, *relay.outputs], relay))
                pidfd = os.pidfd_open(pid)
                waiting[pidfd] = (request["id"], pid, relay)
                poller.register(pidfd, select.POLLIN)
                channel.send(marshal.dumps(("started", request["id"], pid)))
        for fd in [fd for fd, relay in relays.items() if fd not in (relay.stdin, *relay.outputs)]:
            del relays[fd]  # closed


def _fds(data: bytes) -> list[int]:
    return list(memoryview(data).cast("i"))


def main() -> None:
    _check(_prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "tying the entrance to its owner")
    spec = marshal.loads(bytes.fromhex(sys.argv[1]))
    try:
        sandbox = _open_sandbox(spec["pid"], spec["cgroups"])
    except OSError as error:
        _fail(f"cannot enter the sandbox (is it still running?): {error}")
    channel = socket.socket(fileno=0)  # a SOCK_SEQPACKET pair's other end
    channel.send(b"ready")
    serve(channel, sandbox)


if __name__ == "__main__":
    main()
