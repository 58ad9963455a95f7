"""A command's output, passed on line by line while it runs (Harbor's output callback).

The sandbox writes a command's output to a file on the host; `streamed` follows that
file and hands each complete line to the callback, as Harbor's Docker environment
does with `docker compose exec`'s pipe, then the last unterminated line at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

from autoagent.sandbox.jail import _read_capped

POLL_SECONDS = 0.05
Callback = Callable[[str, str], Awaitable[None]]


class Output:
    def __init__(self, path: Path) -> None:
        self.path = path

    def text(self) -> str:
        """Everything the command wrote, or its head and tail if it wrote too much."""
        return _read_capped(self.path)


@contextlib.asynccontextmanager
async def streamed(path: Path, callback: Callback | None) -> AsyncIterator[Output]:
    """Follow `path` while the body runs, calling `callback(line, "stdout")` per line."""
    if callback is None:
        yield Output(path)
        return
    done = asyncio.Event()
    follower = asyncio.create_task(_follow(path, callback, done))
    try:
        yield Output(path)
    except BaseException:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
        raise
    done.set()
    await follower


async def _follow(path: Path, callback: Callback, done: asyncio.Event) -> None:
    offset, pending = 0, b""
    while True:
        finished = done.is_set()  # read once more after the command has ended
        try:
            with open(path, "rb") as file:
                file.seek(offset)
                chunk = file.read()
        except FileNotFoundError:
            chunk = b""
        offset += len(chunk)
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            await callback(line.decode(errors="replace") + "\n", "stdout")
        if finished:
            if pending:
                await callback(pending.decode(errors="replace"), "stdout")
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), POLL_SECONDS)
