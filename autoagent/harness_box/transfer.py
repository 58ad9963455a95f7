"""Files handed over between a harness box and the host, through a staging directory.

The box can write its staging directory at any moment, so what it staged is copied
out without following a single link: each name is opened relative to its parent's
descriptor with O_NOFOLLOW, and anything but a regular file or a directory is
refused. (A link swapped in after a check is refused too: the open itself fails.)
What the host stages for the box is moved in by rename, from a directory the box
cannot see, so the box cannot redirect it either.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

NO_FOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC


class TransferError(RuntimeError):
    """What the harness staged cannot be copied safely."""


def _refuse(name: str, mode: int) -> TransferError:
    kind = "a symbolic link" if stat.S_ISLNK(mode) else "not a regular file or directory"
    return TransferError(f"{name} is {kind}: the harness box uploads regular files and directories only")


def copy_out(staging: Path, name: str, target: Path, *, lenient: bool = False) -> list[str]:
    """Copy `staging/name` (a file or a tree) to `target` on the host, following no
    link. Strict, anything else is refused; `lenient`, it is left out (and its
    name returned), and files already at the target are replaced."""
    if "/" in name or name in ("", ".", ".."):
        raise TransferError(f"bad staging name {name!r}")
    parent = os.open(staging, os.O_RDONLY | os.O_DIRECTORY | NO_FOLLOW)
    skipped: list[str] = []
    try:
        _copy(parent, name, target, skipped if lenient else None)
    finally:
        os.close(parent)
    return skipped


def _copy(parent: int, name: str, target: Path, skipped: list[str] | None) -> None:
    try:
        fd = os.open(name, os.O_RDONLY | NO_FOLLOW | os.O_NONBLOCK, dir_fd=parent)
    except OSError as error:
        mode = os.stat(name, dir_fd=parent, follow_symlinks=False).st_mode if error.errno == errno.ELOOP else 0
        if skipped is not None:
            return skipped.append(str(target))
        raise _refuse(name, mode) if mode else TransferError(f"cannot read {name}: {error}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode):
            with open(fd, "rb", closefd=False) as source, open(target, "wb" if skipped is not None else "xb") as out:
                while chunk := source.read(1 << 20):
                    out.write(chunk)
            os.chmod(target, stat.S_IMODE(mode) & 0o755)
        elif stat.S_ISDIR(mode):
            target.mkdir(exist_ok=True)
            for entry in os.listdir(fd):
                _copy(fd, entry, target / entry, skipped)
        elif skipped is not None:
            skipped.append(str(target))
        else:
            raise _refuse(name, mode)
    finally:
        os.close(fd)
