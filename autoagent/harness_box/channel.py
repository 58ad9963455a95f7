"""JSON lines over a socket between a harness box and the process that runs the trial.

Either side asks (`request`: {"id", "op", ...}) and the other answers
({"reply_to", "result"} or {"reply_to", "error": {"type", "message"}}); requests run
concurrently, so a harness may run several commands at once.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import traceback
from collections.abc import Awaitable, Callable
from typing import Any

LINE_LIMIT = 2**30  # a command's whole output travels in one line

Handler = Callable[[dict[str, Any]], Awaitable[Any]]


class RemoteError(RuntimeError):
    """An error raised on the other side; `kind` is its class name."""

    def __init__(self, kind: str, message: str, detail: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.kind, self.detail = kind, detail or {}


class ChannelClosed(ConnectionError):
    """The other side went away."""


class Channel:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future] = {}
        self._tasks: set[asyncio.Task] = set()
        self.closed: str | None = None

    @classmethod
    async def open(cls, sock: socket.socket) -> Channel:
        reader, writer = await asyncio.open_connection(sock=sock, limit=LINE_LIMIT)
        return cls(reader, writer)

    async def send(self, message: dict[str, Any]) -> None:
        self.writer.write(json.dumps(message).encode() + b"\n")
        await self.writer.drain()

    async def request(self, op: str, **fields: Any) -> Any:
        if self.closed:
            raise ChannelClosed(self.closed)
        number = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[number] = future
        try:
            await self.send({"id": number, "op": op, **fields})
            reply = await future
        finally:
            self._waiting.pop(number, None)
        if "error" in reply:
            error = reply["error"]
            raise RemoteError(error["type"], error["message"], error)
        return reply.get("result")

    async def serve(self, handler: Handler) -> None:
        """Answer requests with `handler` and hand replies to their askers, until the
        other side closes the connection."""
        try:
            while line := await _readline(self.reader):
                message = json.loads(line)
                if "reply_to" in message:
                    future = self._waiting.get(message["reply_to"])
                    if future is not None and not future.done():
                        future.set_result(message)
                else:
                    task = asyncio.create_task(self._answer(handler, message))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            self.closed = self.closed or "the other side closed the connection"
            for future in self._waiting.values():
                if not future.done():
                    future.set_exception(ChannelClosed(self.closed))
            for task in self._tasks:
                task.cancel()

    async def _answer(self, handler: Handler, message: dict[str, Any]) -> None:
        try:
            reply = {"reply_to": message["id"], "result": await handler(message)}
        except Exception as error:  # told to the asker, who raises it
            reply = {"reply_to": message["id"], "error": describe(error)}
        try:
            await self.send(reply)
        except (ConnectionError, RuntimeError):
            pass  # the asker is gone

    def close(self) -> None:
        self.closed = self.closed or "closed"
        self.writer.close()


async def _readline(reader: asyncio.StreamReader) -> bytes:
    try:
        return await reader.readline()
    except ConnectionError:  # the other side was killed: as good as closed
        return b""


def describe(error: BaseException) -> dict[str, Any]:
    detail = getattr(error, "detail", None)
    return {
        "traceback": "".join(traceback.format_exception(error)[-6:]),
        **(detail if isinstance(detail, dict) else {}),
        "type": getattr(error, "kind", type(error).__name__),
        "message": str(error),
    }
