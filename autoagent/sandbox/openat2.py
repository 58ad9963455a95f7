"""`openat2(2)`: opening a path beneath a directory, with the kernel's word that no link
and no `..` led out of it. Python's `os` does not offer it (yet); `transfer.py` builds on it.
"""

from __future__ import annotations

import ctypes
import errno
import os

RESOLVE_NO_MAGICLINKS = 0x02
RESOLVE_NO_SYMLINKS = 0x04
RESOLVE_BENEATH = 0x08
RESOLVE_IN_ROOT = 0x10
# A path the caller names: links followed as inside the sandbox, never out of it.
AS_INSIDE = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS
# An entry of a tree being copied: no link of any kind, never above its directory.
STRICT = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS
SYS_OPENAT2 = 437  # the same number on every architecture
# Kernel interfaces, not files: the host's root may read or write there what the
# sandbox's root may not (/proc/kcore, other processes' memory), so no copy enters them.
PSEUDO_FILESYSTEMS = {
    0x9FA0: "proc", 0x62656572: "sysfs", 0x64626720: "debugfs", 0x73636673: "securityfs",
    0x27E0EB: "cgroup", 0x63677270: "cgroup2", 0x74726163: "tracefs", 0xCAFE4A11: "bpf",
    0x62656570: "configfs", 0xDE5E81E4: "efivarfs", 0x6165676C: "pstore", 0x1CD1: "devpts",
}  # fmt: skip
_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


def openat2(dir_fd: int, path: str, flags: int, resolve: int, mode: int = 0) -> int:
    how = _OpenHow(flags | os.O_CLOEXEC, mode, resolve)
    fd = _libc.syscall(
        ctypes.c_long(SYS_OPENAT2), ctypes.c_int(dir_fd), ctypes.c_char_p(os.fsencode(path)),
        ctypes.byref(how), ctypes.c_size_t(ctypes.sizeof(how)),
    )  # fmt: skip
    if fd < 0:
        code = ctypes.get_errno()
        reason = "needs Linux 5.6 or newer" if code == errno.ENOSYS else os.strerror(code)
        raise OSError(code, reason, path)
    return fd


def pseudo_filesystem(fd: int) -> str | None:
    """The name of the kernel filesystem `fd` is on (proc, sysfs, ...), or None for files."""
    buffer = ctypes.create_string_buffer(256)  # struct statfs; f_type comes first
    if _libc.fstatfs(ctypes.c_int(fd), buffer) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return PSEUDO_FILESYSTEMS.get(ctypes.c_long.from_buffer(buffer).value & 0xFFFFFFFF)
