"""Copying files in and out of a running sandbox without trusting anything inside it.

Nothing here runs a program of the sandbox or reads an archive one made. The host
opens the sandbox's root (its `/proc/<pid>/root`, seen through the sandbox's own
mounts) and resolves every path with `openat2`: a path the caller names resolves
as it would inside (`RESOLVE_IN_ROOT`: links are followed, but never out of the
root), and every entry of a copied tree is opened beneath its directory with no
link followed at all (`RESOLVE_NO_SYMLINKS`, `O_NOFOLLOW`) and no magic link of
`/proc`. On the host, files are created with directory descriptors and `O_EXCL`,
so a name the copy itself made can never redirect a later write.

What `docker cp` does, this does, with these differences for the host's sake:
set-user-ID, set-group-ID and sticky bits are dropped; hard links arrive as
separate files; device files, FIFOs and sockets are skipped with a note;
`copy_file_out` refuses a symbolic link (a link copied to the host would point at
the host's files when read there). `limit` caps the bytes one copy writes (an
agent's 100 MB of logs must not fill the jobs directory): the smallest files are
kept whole, the rest cut, and `CUT_NOTE` in the target says what was cut.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from autoagent.sandbox.openat2 import AS_INSIDE, STRICT, openat2, pseudo_filesystem

CUT_NOTE = "CUT-BY-SANDBOX.txt"
CHUNK = 1 << 20
ENTRY_COST = 1024  # bytes of `limit` each name costs, so that a flood of empty files is cut too
NOTE_LINES = 200
MAX_DEPTH = 256
MAX_ENTRIES = 100_000  # names one copy lists at most: a flood of files must not exhaust host memory

class TransferError(RuntimeError):
    """A copy that could not be made safely; the message says which path and why."""


@dataclass
class _Entry:
    path: str  # relative to the copied directory, "/"-separated
    kind: str  # "dir", "file", "link"
    mode: int
    size: int = 0
    link: str = ""
    mtime_ns: int = 0
    keep_bytes: int = 0


@dataclass
class Outcome:
    """What a copy left out, for the caller to log."""

    notes: list[str] = field(default_factory=list)  # skipped: links, special files, ...
    listed: int = 0  # entries seen so far (see MAX_ENTRIES)
    cut: list[str] = field(default_factory=list)  # cut or left out for `limit`


# -- out of the sandbox ------------------------------------------------------------


def copy_dir_out(
    root_fd: int,
    source: str,
    target: Path,
    *,
    limit: int | None = None,
    keep: Callable[[str], bool] | None = None,
    inward_links_only: bool = False,
) -> Outcome:
    """The contents of the sandbox's directory `source` into the host directory `target`.

    `keep(relative_path)` chooses the files and links to copy (all when None); with it,
    directories are made only to hold what is kept. `inward_links_only` drops (with a
    note) every link that could resolve outside the copy on the host: absolute ones
    and those with a `..`; for trees that host code reads after the copy.
    """
    outcome = Outcome()
    with _opened(root_fd, source, os.O_RDONLY | os.O_DIRECTORY, f"copy {source} out of the sandbox") as fd:
        entries = _walk(fd, "", 0, outcome)
        if keep is not None:
            entries = [e for e in entries if e.kind != "dir" and keep(e.path)]
        if inward_links_only:
            entries = [e for e in entries if not _outward(e, outcome)]
        entries = _budget(entries, limit, outcome)
        _refuse_link(target, source)
        target.mkdir(parents=True, exist_ok=True)
        _write_tree(fd, entries, target, outcome)
    if outcome.cut:
        _write_note(target, limit or 0, outcome.cut)
    return outcome


def copy_file_out(root_fd: int, source: str, target: Path, *, limit: int | None = None) -> Outcome:
    """The sandbox's `source` to the host path `target` (into it, when it is a directory).

    A directory is copied whole, as `docker cp` does; a link or special file is refused.
    `limit` caps the bytes written (a sparse file of terabytes costs nothing inside).
    """
    what = f"copy {source} out of the sandbox"
    with _opened(root_fd, source, os.O_PATH | os.O_NOFOLLOW, what) as fd:
        info = os.fstat(fd)
    name = PurePosixPath(source).name or "root"
    destination = target / name if target.is_dir() and not target.is_symlink() else target
    if stat.S_ISDIR(info.st_mode):
        if destination.exists() and not destination.is_dir():
            raise TransferError(f"Cannot {what}: it is a directory and {destination} is not")
        return copy_dir_out(root_fd, source, destination, limit=limit)
    if stat.S_ISLNK(info.st_mode):
        raise TransferError(
            f"Cannot {what}: it is a symbolic link; a link copied to the host would "
            "point at the host's own files"
        )
    if not stat.S_ISREG(info.st_mode):
        raise TransferError(f"Cannot {what}: it is not a regular file ({_kind(info.st_mode)})")
    _refuse_link(destination.parent, source)
    destination.parent.mkdir(parents=True, exist_ok=True)
    parent = os.open(destination.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        with _opened(root_fd, source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, what) as src:
            kept = info.st_size if limit is None else min(info.st_size, limit)
            entry = _Entry(destination.name, "file", info.st_mode, info.st_size,
                           mtime_ns=info.st_mtime_ns, keep_bytes=kept)  # fmt: skip
            _write_file(src, parent, destination.name, entry, Outcome())
    finally:
        os.close(parent)
    outcome = Outcome()
    if kept < info.st_size:
        outcome.cut.append(f"cut {source}: kept {kept} of {info.st_size} bytes")
    return outcome


def _refuse_link(directory: Path, source: str) -> None:
    """A host directory to write into must not be a link (an earlier copy may have made it)."""
    if directory.is_symlink():
        raise TransferError(
            f"Cannot copy {source} out of the sandbox: {directory} is a symbolic link on the host"
        )


def _walk(dir_fd: int, prefix: str, depth: int, outcome: Outcome) -> list[_Entry]:
    if depth > MAX_DEPTH:
        raise TransferError(f"{prefix} is nested more than {MAX_DEPTH} directories deep")
    entries: list[_Entry] = []
    for name in sorted(os.listdir(dir_fd)):
        path = f"{prefix}{name}"
        outcome.listed += 1
        if outcome.listed > MAX_ENTRIES:
            if outcome.listed == MAX_ENTRIES + 1:
                outcome.notes.append(f"stopped listing at {MAX_ENTRIES} entries: the rest is not copied")
            break
        try:
            info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        except FileNotFoundError:
            continue  # removed while we looked
        if stat.S_ISDIR(info.st_mode):
            try:
                child = openat2(dir_fd, name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, STRICT)
            except OSError as error:
                outcome.notes.append(f"skipped {path}/: {error.strerror}")
                continue
            try:
                kernel = pseudo_filesystem(child)
                if kernel:
                    outcome.notes.append(f"skipped {path}/: the kernel's {kernel}, not files")
                else:
                    entries.append(_Entry(path, "dir", info.st_mode, mtime_ns=info.st_mtime_ns))
                    entries += _walk(child, f"{path}/", depth + 1, outcome)
            finally:
                os.close(child)
        elif stat.S_ISREG(info.st_mode):
            entries.append(_Entry(path, "file", info.st_mode, info.st_size, mtime_ns=info.st_mtime_ns))
        elif stat.S_ISLNK(info.st_mode):
            try:
                link = os.readlink(name, dir_fd=dir_fd)
            except OSError:
                continue  # replaced while we looked
            entries.append(_Entry(path, "link", info.st_mode, link=link))
        else:
            outcome.notes.append(f"skipped {path}: a {_kind(info.st_mode)} is not copied")
    return entries


def _outward(entry: _Entry, outcome: Outcome) -> bool:
    # A relative link without `..` resolves beneath its own directory, and so does a chain of them.
    if entry.kind != "link" or not (entry.link.startswith("/") or ".." in entry.link.split("/")):
        return False
    outcome.notes.append(f"skipped {entry.path}: a link to {entry.link} could point outside")
    return True


def _budget(entries: list[_Entry], limit: int | None, outcome: Outcome) -> list[_Entry]:
    """What fits in `limit` bytes: names first, shallowest first (each costs ENTRY_COST);
    then the files' bytes, smallest file first, so that few are cut (a cut file keeps its head)."""
    for entry in entries:
        entry.keep_bytes = entry.size
    if limit is None:
        return entries
    left, kept = limit, []
    for entry in sorted(entries, key=lambda e: (e.path.count("/"), e.kind == "file", e.size)):
        if left < ENTRY_COST:
            outcome.cut.append(f"left out {entry.path} ({entry.size} bytes)")
        else:
            left -= ENTRY_COST
            kept.append(entry)
    for entry in sorted((e for e in kept if e.kind == "file"), key=lambda e: e.size):
        entry.keep_bytes = min(entry.size, left)
        left -= entry.keep_bytes
        if entry.keep_bytes < entry.size:
            outcome.cut.append(f"cut {entry.path}: kept {entry.keep_bytes} of {entry.size} bytes")
    admitted = {entry.path for entry in kept}
    return [entry for entry in entries if entry.path in admitted]


def _write_tree(source_fd: int, entries: list[_Entry], target: Path, outcome: Outcome) -> None:
    # Descriptors of the directories on the way to the current entry only (never one per
    # directory of the tree: a tree of thousands would exhaust the process's descriptors).
    dirs: dict[str, int] = {"": os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)}
    try:
        for entry in entries:
            parent_path, _, name = entry.path.rpartition("/")
            _keep_ancestors(dirs, parent_path)
            parent = _host_dir(dirs, parent_path)
            if entry.kind == "dir":
                _host_dir(dirs, entry.path)
            elif entry.kind == "link":
                _clear(parent, name, keep_dir=False)
                os.symlink(entry.link, name, dir_fd=parent)
            else:
                try:
                    src = openat2(source_fd, entry.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, STRICT)
                except OSError as error:
                    outcome.notes.append(f"skipped {entry.path}: {error.strerror}")
                    continue
                try:
                    _write_file(src, parent, name, entry, outcome)
                finally:
                    os.close(src)
        for entry in reversed([e for e in entries if e.kind == "dir"]):  # modes last: filled first
            _keep_ancestors(dirs, entry.path)
            fd = _host_dir(dirs, entry.path)
            os.chmod(fd, stat.S_IMODE(entry.mode) & 0o777)
            os.utime(fd, ns=(entry.mtime_ns, entry.mtime_ns))
    finally:
        for fd in dirs.values():
            os.close(fd)


def _keep_ancestors(dirs: dict[str, int], path: str) -> None:
    """Close the descriptors of directories that are neither `path` nor above it."""
    for held in [p for p in dirs if p and p != path and not path.startswith(p + "/")]:
        os.close(dirs.pop(held))


def _host_dir(dirs: dict[str, int], path: str) -> int:
    """A descriptor of the target's subdirectory `path`, made if missing; never a link."""
    if path in dirs:
        return dirs[path]
    parent_path, _, name = path.rpartition("/")
    parent = _host_dir(dirs, parent_path)
    _clear(parent, name, keep_dir=True)
    try:
        os.mkdir(name, 0o700, dir_fd=parent)
    except FileExistsError:
        pass
    dirs[path] = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent)
    return dirs[path]


def _clear(dir_fd: int, name: str, *, keep_dir: bool) -> None:
    """Remove what stands at `name` (a directory only when it is in the way)."""
    try:
        info = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        if not keep_dir:
            shutil.rmtree(name, dir_fd=dir_fd)
    else:
        os.unlink(name, dir_fd=dir_fd)


def _write_file(src: int, dir_fd: int, name: str, entry: _Entry, outcome: Outcome) -> None:
    info = os.fstat(src)
    if not stat.S_ISREG(info.st_mode):  # swapped for something else since the walk
        outcome.notes.append(f"skipped {entry.path}: no longer a regular file")
        return
    _clear(dir_fd, name, keep_dir=False)
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        left = entry.keep_bytes
        while left > 0 and (chunk := os.read(src, min(CHUNK, left))):
            _write_all(out, chunk)
            left -= len(chunk)
        os.chmod(out, stat.S_IMODE(info.st_mode) & 0o777)
        os.utime(out, ns=(info.st_mtime_ns, info.st_mtime_ns))
    finally:
        os.close(out)


def _write_note(target: Path, limit: int, cut: list[str]) -> None:
    more = [f"... and {len(cut) - NOTE_LINES} more"] if len(cut) > NOTE_LINES else []
    text = "\n".join([
        f"The sandbox copied at most {limit} bytes of this directory out of the trial:",
        *cut[:NOTE_LINES], *more,
    ]) + "\n"  # fmt: skip
    fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _clear(fd, CUT_NOTE, keep_dir=False)
        out = os.open(CUT_NOTE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644, dir_fd=fd)
        with os.fdopen(out, "w") as file:
            file.write(text)
    finally:
        os.close(fd)


# -- into the sandbox --------------------------------------------------------------


def copy_in(root_fd: int, sources: list[tuple[Path, str]], directory: str) -> None:
    """Host files and trees `(source, name)` into the sandbox's `directory` (made if missing).

    Everything arrives owned by the sandbox's root, modes kept; a link in the sandbox
    is followed as the sandbox would follow it, never out of its root.
    """
    what = f"Could not copy files into {directory}"
    owner = os.fstat(root_fd)
    try:
        parent = _sandbox_dirs(root_fd, directory, owner)
    except OSError as error:
        raise TransferError(f"{what}: {error.strerror} ({error.filename})") from None
    try:
        for source, name in sources:
            _put(source, parent, name, owner)
    except OSError as error:
        raise TransferError(f"{what}: {error.strerror} ({error.filename or name})") from None
    finally:
        os.close(parent)


def make_dir_inside(root_fd: int, path: str, mode: int | None = None) -> None:
    """`mkdir -p path` inside, owned by the sandbox's root; then `chmod mode` if given."""
    fd = _sandbox_dirs(root_fd, path, os.fstat(root_fd))
    try:
        if mode is not None:
            os.chmod(f"/proc/self/fd/{fd}", mode)  # the way to reach an O_PATH descriptor
    finally:
        os.close(fd)


def is_dir_inside(root_fd: int, path: str) -> bool:
    try:
        fd = openat2(root_fd, path, os.O_PATH | os.O_DIRECTORY, AS_INSIDE)
    except OSError:
        return False
    os.close(fd)
    return True


def _sandbox_dirs(root_fd: int, directory: str, owner: os.stat_result) -> int:
    """`mkdir -p directory` inside; a descriptor of it."""
    parts = [p for p in PurePosixPath("/", directory).parts[1:]]
    for depth in range(len(parts) + 1):
        path = "/".join(parts[:depth]) or "."
        try:
            fd = openat2(root_fd, path, os.O_PATH | os.O_DIRECTORY, AS_INSIDE)
        except FileNotFoundError:
            parent = openat2(root_fd, "/".join(parts[: depth - 1]) or ".", os.O_PATH | os.O_DIRECTORY, AS_INSIDE)
            try:
                os.mkdir(parts[depth - 1], 0o755, dir_fd=parent)
                os.chown(parts[depth - 1], owner.st_uid, owner.st_gid, dir_fd=parent, follow_symlinks=False)
            finally:
                os.close(parent)
            fd = openat2(root_fd, path, os.O_PATH | os.O_DIRECTORY, AS_INSIDE)
        if depth == len(parts):
            kernel = pseudo_filesystem(fd)
            if kernel:
                os.close(fd)
                raise OSError(errno.EPERM, f"it is in the kernel's {kernel}", directory)
            return fd
        os.close(fd)
    raise AssertionError("unreachable")


def _put(source: Path, dir_fd: int, name: str, owner: os.stat_result) -> None:
    info = source.lstat()
    mode = stat.S_IMODE(info.st_mode)
    if stat.S_ISDIR(info.st_mode):
        _clear(dir_fd, name, keep_dir=True)
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=dir_fd)
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        try:
            for entry in sorted(source.iterdir()):
                _put(entry, child, entry.name, owner)
            os.chown(child, owner.st_uid, owner.st_gid)
            os.chmod(child, mode)
        finally:
            os.close(child)
    elif stat.S_ISLNK(info.st_mode):
        _clear(dir_fd, name, keep_dir=False)
        os.symlink(os.readlink(source), name, dir_fd=dir_fd)
        os.chown(name, owner.st_uid, owner.st_gid, dir_fd=dir_fd, follow_symlinks=False)
    elif stat.S_ISREG(info.st_mode):
        with open(source, "rb") as data:
            _create(dir_fd, name, iter(functools.partial(data.read, CHUNK), b""), mode, owner)


def write_inside(root_fd: int, path: str, data: bytes, mode: int = 0o644) -> None:
    """`data` as the sandbox's file `path`, owned by its root; whatever stood there is replaced."""
    target = PurePosixPath("/", path)
    owner = os.fstat(root_fd)
    parent = _sandbox_dirs(root_fd, str(target.parent), owner)
    try:
        _create(parent, target.name, [data], mode, owner)
    finally:
        os.close(parent)


def _create(dir_fd: int, name: str, chunks: Iterable[bytes], mode: int, owner: os.stat_result) -> None:
    _clear(dir_fd, name, keep_dir=False)
    out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        for chunk in chunks:
            _write_all(out, chunk)
        os.chown(out, owner.st_uid, owner.st_gid)
        os.chmod(out, mode)
    finally:
        os.close(out)


# -- helpers -----------------------------------------------------------------------


@contextlib.contextmanager
def _opened(root_fd: int, path: str, flags: int, what: str) -> Iterator[int]:
    """`openat2` of a path as the sandbox names it, with an error that says what failed."""
    try:
        fd = openat2(root_fd, path, flags, AS_INSIDE)
    except FileNotFoundError:
        raise FileNotFoundError(f"Cannot {what}: no such file or directory") from None
    except OSError as error:
        reason = {
            errno.ENOTDIR: "it is not a directory",
            errno.ELOOP: "it is a symbolic link",
        }.get(error.errno, error.strerror)
        raise TransferError(f"Cannot {what}: {reason}") from None
    try:
        kernel = pseudo_filesystem(fd)
        if kernel:
            raise TransferError(f"Cannot {what}: it is in the kernel's {kernel}, not a file")
        yield fd
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISSOCK(mode):
        return "socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device file"
    return "special file"
