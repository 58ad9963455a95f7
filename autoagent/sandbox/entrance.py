"""Our side of `enter.py`: one entrance process per sandbox, asked over a socket to
start commands inside it; we learn each command's pid and, later, its exit status."""

from __future__ import annotations

import array
import asyncio
import contextlib
import itertools
import marshal
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

ENTER = Path(__file__).with_name("enter.py")
SEND_BUFFER = 16 * 2**20  # a request carries the whole command and its environment
SO_SNDBUFFORCE = getattr(socket, "SO_SNDBUFFORCE", 32)  # Linux; root may exceed wmem_max


class EntranceError(RuntimeError):
    """The entrance process is gone: the sandbox was stopped, or died."""


class Command:
    """A command started in the sandbox: its host pid, which leads its process group."""

    def __init__(self, pid: int, exited: asyncio.Future[int]) -> None:
        self.pid = pid
        self._exited = exited

    async def wait(self) -> int:
        """Its exit status (negative: killed by that signal)."""
        return await asyncio.shield(self._exited)

    async def kill(self) -> None:
        """Kill it and its children (its process group), then wait for it."""
        if not self._exited.done():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.pid, signal.SIGKILL)
        with contextlib.suppress(EntranceError):
            await self.wait()


class Entrance:
    def __init__(self) -> None:
        self._process: subprocess.Popen | None = None
        self._channel: socket.socket | None = None
        self._ids = itertools.count()
        self._started: dict[int, asyncio.Future[int]] = {}
        self._exited: dict[int, asyncio.Future[int]] = {}

    async def open(self, init_pid: int, cgroups: list[Path], log: Path) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with contextlib.suppress(OSError):
            ours.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, SEND_BUFFER)
        spec = {"pid": init_pid, "cgroups": [str(path) for path in cgroups]}
        # A plain Popen, reaped by us at close: asyncio's child watcher is not needed.
        try:
            with open(log, "ab") as errors:
                self._process = subprocess.Popen(
                    [sys.executable, "-I", "-S", str(ENTER), marshal.dumps(spec).hex()],
                    stdin=theirs, stdout=errors, stderr=errors,
                )  # fmt: skip
        finally:
            theirs.close()
        ours.setblocking(False)
        try:
            ready = await asyncio.get_running_loop().sock_recv(ours, 64)
        except BaseException:
            ours.close()
            raise
        if ready != b"ready":
            ours.close()
            detail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise EntranceError(f"cannot enter the sandbox: {detail[0]}")
        self._channel = ours
        asyncio.get_running_loop().add_reader(ours.fileno(), self._receive)

    async def start(self, request: dict, streams: tuple[int, int, int]) -> Command:
        """Start a command with these descriptors as its stdin, stdout and stderr."""
        if self._channel is None:
            raise EntranceError("the sandbox is not running")
        ident = next(self._ids)
        loop = asyncio.get_running_loop()
        started = self._started[ident] = loop.create_future()
        exited = self._exited[ident] = loop.create_future()
        message = marshal.dumps({**request, "id": ident})
        fds = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array("i", streams))]
        while True:
            try:
                self._channel.sendmsg([message], fds)
                break
            except BlockingIOError:
                await asyncio.sleep(0.005)
            except OSError as error:
                raise EntranceError(f"the sandbox's entrance is gone: {error}") from None
        try:
            return Command(await asyncio.shield(started), exited)
        except asyncio.CancelledError:  # it starts anyway: kill it once we know its pid
            with contextlib.suppress(EntranceError):
                await Command(await started, exited).kill()
            raise

    def _receive(self) -> None:
        try:
            data = self._channel.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._broken()
            return
        kind, ident, value = marshal.loads(data)
        future = (self._started if kind == "started" else self._exited).pop(ident, None)
        if future is not None and not future.done():
            future.set_result(value)

    def _broken(self) -> None:
        if self._channel is not None:
            asyncio.get_running_loop().remove_reader(self._channel.fileno())
            self._channel.close()
            self._channel = None
        for table in (self._started, self._exited):
            for future in table.values():
                if not future.done():
                    future.set_exception(EntranceError("the sandbox stopped"))
            table.clear()

    async def close(self) -> None:
        self._broken()
        if self._process is not None:
            self._process.kill()
            await asyncio.get_running_loop().run_in_executor(None, self._process.wait)
            self._process = None
