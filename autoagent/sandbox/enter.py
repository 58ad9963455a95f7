"""Run one command inside a running sandbox, with no host privilege left when it starts.

`Jail.run` starts this file with the host's own interpreter (`python -I -S enter.py
SPEC`): nothing here is looked up inside the sandbox, whose files a trial may have
replaced (`setpriv`, `env`, the dynamic loader, libc). Everything this needs is loaded
and opened on the host first. The process then joins the cgroups and the sandbox's
namespaces and forks (a PID namespace only applies to children); the child enters
the mount namespace, chroots, drops to Docker's default capabilities and the
command's user, and only then executes a file of the sandbox. The parent stays on the
host's filesystem, forwards termination signals and exits as the command did.

Standard library only, and no import after the chroot: an import there would read
Python files from the sandbox with every privilege still held.
"""

import ctypes
import json
import os
import signal
import sys

NAMESPACES = {
    "ipc": os.CLONE_NEWIPC, "uts": os.CLONE_NEWUTS, "net": os.CLONE_NEWNET,
    "pid": os.CLONE_NEWPID, "mnt": os.CLONE_NEWNS,
}  # fmt: skip
PR_SET_PDEATHSIG = 1
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
CAPABILITY_VERSION_3 = 0x20080522
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FORWARDED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
FAILED = 125  # could not enter the sandbox (like `docker exec`'s own failures)


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
        return  # changing to a non-root uid below clears them all
    mask = sum(1 << cap for cap in keep if cap < 32)
    high = sum(1 << (cap - 32) for cap in keep if cap >= 32)
    header = _CapHeader(CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)(_CapData(mask, mask, 0), _CapData(high, high, 0))
    _check(_capset(ctypes.byref(header), data), "setting capabilities")


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


def _child(spec: dict, files: dict[str, int], root: int, last_cap: int) -> None:
    # Anything imported from here on would come from the sandbox: allow none.
    sys.path.clear()
    sys.path_hooks.clear()
    sys.meta_path.clear()
    os.setns(files["mnt"], NAMESPACES["mnt"])
    os.fchdir(root)
    os.chroot(".")
    os.close(root)
    for fd in files.values():
        os.close(fd)
    uid, gid = spec["uid"], spec["gid"]
    _drop_capabilities(spec["capabilities"], last_cap, root=uid == 0)
    if uid != 0:
        os.setgroups(spec["groups"])
        os.setgid(gid)
        os.setuid(uid)
    # After the change of user, which would clear it.
    _check(_prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "tying the command to its launcher")
    try:
        os.chdir(spec["cwd"])
    except OSError as error:
        _fail(f"cannot change directory to {spec['cwd']}: {error.strerror}", 126)
    for number in signal.valid_signals():
        if number not in (signal.SIGKILL, signal.SIGSTOP):
            try:
                signal.signal(number, signal.SIG_DFL)
            except (OSError, ValueError):
                pass
    signal.pthread_sigmask(signal.SIG_SETMASK, ())
    _execute(spec["argv"], spec["env"])


def _relay(child: int) -> None:
    """Wait for the command; pass termination on to it and exit as it did."""
    for number in FORWARDED:
        signal.signal(number, lambda received, _frame: os.kill(child, received))
    _, status = os.waitpid(child, 0)
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        signal.signal(number, signal.SIG_DFL)
        os.kill(os.getpid(), number)
        os._exit(128 + number)
    os._exit(os.waitstatus_to_exitcode(status))


def main() -> None:
    spec = json.loads(sys.argv[1])
    pid = spec["pid"]
    try:
        files = {name: os.open(f"/proc/{pid}/ns/{name}", os.O_RDONLY) for name in spec["namespaces"]}
        root = os.open(f"/proc/{pid}/root", os.O_RDONLY | os.O_DIRECTORY)
        with open("/proc/sys/kernel/cap_last_cap") as file:
            last_cap = int(file.read())
        for procs in spec["cgroups"]:
            with open(procs, "w") as file:
                file.write(str(os.getpid()))
        for name, fd in files.items():
            if name != "mnt":
                os.setns(fd, NAMESPACES[name])
    except OSError as error:
        _fail(f"cannot enter the sandbox (is it still running?): {error}")
    child = os.fork()
    if child == 0:
        try:
            _child(spec, files, root, last_cap)
        except BaseException as error:  # noqa: BLE001 - report, never fall through to the parent
            _fail(f"cannot start the command: {type(error).__name__}: {error}")
    _relay(child)


if __name__ == "__main__":
    main()
