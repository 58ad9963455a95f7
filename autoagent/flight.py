"""Candidates in flight: up to K at once, each an asyncio task from its proposal to its decision.

    async with Flight(k) as flight:
        while ...:
            await flight.room()          # fewer than k in flight
            flight.start(candidate())

Leaving the block waits for every candidate still in flight. An error that is no candidate's
own (git broken past its retries, a model that cannot work as configured) escapes one of
them: the others are cancelled and that error is raised as itself, not as a group.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine


class Flight:
    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._group = asyncio.TaskGroup()
        self._tasks: set[asyncio.Task] = set()
        self._changed = asyncio.Event()

    async def __aenter__(self) -> Flight:
        await self._group.__aenter__()
        return self

    async def __aexit__(self, kind, error, trace) -> bool | None:
        try:
            return await self._group.__aexit__(kind, error, trace)
        except BaseExceptionGroup as group:
            first = next((e for e in _leaves(group) if not isinstance(e, asyncio.CancelledError)), None)
            if first is None:
                raise
            raise first from None

    def __len__(self) -> int:
        return len(self._tasks)

    def start(self, candidate: Coroutine) -> asyncio.Task:
        task = self._group.create_task(candidate)
        self._tasks.add(task)
        task.add_done_callback(self._landed)
        return task

    async def room(self) -> None:
        """Wait until fewer than `size` candidates are in flight."""
        while len(self._tasks) >= self.size:
            self._changed.clear()
            await self._changed.wait()

    def cancel(self) -> None:
        """Cancel every candidate in flight (each leaves its records as they are, to resume)."""
        for task in self._tasks:
            task.cancel()

    def _landed(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        self._changed.set()


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    found = []
    for error in group.exceptions:
        found += _leaves(error) if isinstance(error, BaseExceptionGroup) else [error]
    return found
