"""The network of one sandbox: a namespace of its own, connected to the outside by `pasta`.

Every command of a sandbox runs in the sandbox's own network namespace, whatever
the policy. `Uplink.connect` starts `pasta` (Debian's passt package) on it: a
user-mode TCP/UDP stack that makes the sandbox's outbound connections from host
sockets, like a NAT. It forwards no port in either direction (`-t/-u/-T/-U none`)
and does not map the gateway address to the host's loopback (`--no-map-gw`), so
services on the host's 127.0.0.1 stay out of reach and every sandbox has its own
ports. `disconnect` stops it: the sandbox's interface goes away with it, for the
processes already running (a daemon left by the agent) as for those started later.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import os
import shutil
from pathlib import Path

from autoagent.sandbox import transfer

ADDRESS, PREFIX, GATEWAY = "10.0.2.15", "24", "10.0.2.2"
DNS_FORWARD = "10.0.2.3"  # pasta relays this address's port 53 to the host's resolver
START_TIMEOUT = 20.0
HOST_RESOLV_CONF = Path("/etc/resolv.conf")


class NetworkError(RuntimeError):
    """The sandbox's network could not be connected."""


class Uplink:
    """`pasta` attached to the network namespace of the process `pid` (a sandbox's first).

    The namespace and the root are held open from here on, so that a recycled pid can
    never point pasta, or the resolv.conf written for it, at another process's.
    """

    def __init__(self, pid: int, directory: Path) -> None:
        self.directory = directory  # host-side scratch for pasta's log and pid file
        self._process: asyncio.subprocess.Process | None = None
        self._namespace = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        self._root = os.open(f"/proc/{pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        if os.fstat(self._namespace).st_ino == os.stat("/proc/self/ns/net").st_ino:
            self._close_descriptors()
            raise NetworkError(f"process {pid} shares the host's network namespace; refusing to configure it")

    async def connect(self) -> None:
        if self._process is not None:
            return
        pasta = shutil.which("pasta")
        if pasta is None:
            raise NetworkError(
                "`pasta` is not installed; a sandbox with the network needs it "
                "(Debian/Ubuntu: apt-get install passt)"
            )
        # pasta relays DNS_FORWARD only when asked: asked always, it stops relaying
        # to a host resolver that the sandbox could reach directly.
        relay = ["--dns-forward", DNS_FORWARD] if _write_resolv_conf(self._root) else []
        pid_file = self.directory / "pasta.pid"
        pid_file.unlink(missing_ok=True)
        log = open(self.directory / "pasta.log", "ab")
        try:
            # pasta drops every capability it does not need; given the namespace as its
            # own descriptor, it needs no access to the sandbox's processes.
            self._process = await asyncio.create_subprocess_exec(
                # pasta dies with the process that started it, however that one ends.
                "setpriv", "--pdeathsig", "KILL", "--",
                pasta, "--foreground", "--quiet", "--runas", "0", "--config-net",
                "--netns", f"/proc/self/fd/{self._namespace}",
                "-t", "none", "-u", "none", "-T", "none", "-U", "none", "--no-map-gw",
                "-a", ADDRESS, "-n", PREFIX, "-g", GATEWAY, *relay,
                "--pid", str(pid_file),
                stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
                pass_fds=(self._namespace,),
            )  # fmt: skip
        finally:
            log.close()
        deadline = asyncio.get_running_loop().time() + START_TIMEOUT
        while not pid_file.exists():  # written once the interface is up
            if self._process.returncode is not None or asyncio.get_running_loop().time() > deadline:
                await self.disconnect()
                detail = (self.directory / "pasta.log").read_text(errors="replace").strip()
                raise NetworkError(f"pasta did not connect the sandbox: {detail[-2000:] or 'no output'}")
            await asyncio.sleep(0.01)

    async def disconnect(self) -> None:
        """Stop pasta; the sandbox's interface and routes go with it."""
        process, self._process = self._process, None
        if process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()

    async def close(self) -> None:
        await self.disconnect()
        self._close_descriptors()

    def _close_descriptors(self) -> None:
        for fd in (self._namespace, self._root):
            if fd >= 0:
                os.close(fd)
        self._namespace = self._root = -1


def resolv_conf(host: str) -> str | None:
    """What the sandbox's /etc/resolv.conf must say, or None when the host's works inside.

    A resolver on the host's loopback (systemd-resolved's 127.0.0.53) is out of the
    sandbox's reach; then pasta relays DNS_FORWARD to it.
    """
    servers, other = [], []
    for line in host.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            servers.append(words[1])
        elif words[:1] in (["search"], ["domain"], ["options"]):
            other.append(line.strip())
    if servers and not any(_is_loopback(server) for server in servers):
        return None
    return "\n".join([f"nameserver {DNS_FORWARD}", *other]) + "\n"


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%")[0]).is_loopback
    except ValueError:
        return False


def _write_resolv_conf(root: int) -> bool:
    """Point the sandbox at DNS_FORWARD if it must be; whether it was."""
    try:
        host = HOST_RESOLV_CONF.read_text()
    except OSError:
        host = ""
    text = resolv_conf(host)
    if text is None:
        return False
    transfer.write_inside(root, "/etc/resolv.conf", text.encode(), mode=0o644)
    return True
