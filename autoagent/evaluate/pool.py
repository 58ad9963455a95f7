"""One pool of trial slots shared by every evaluation of a run.

Several candidates may be evaluated at once, each in a worker process of its own (Harbor
imports a harness once per process). If each job ran its own `n_concurrent` trials, K
candidates would run K times the configured concurrency: more sandboxes than the machine
(or the cloud account) can hold. Instead every trial of every job asks this pool, in the
main process, for a slot before its environment starts and gives it back when the trial
has ended (job.py carries the asks and grants over the worker's pipes). Cheap requests
(a lower `priority`) are served first, first come first served within a priority, so
that a smoke run or a small stage is not stuck behind a large one.

`start_rate` spaces the grants: cloud providers throttle sandbox creation (a 429 when an
account creates more than its quota per second), so a burst of 64 trials must not ask
for 64 sandboxes in the same instant. Each grant waits at least 1/start_rate seconds
after the previous one, plus a random jitter of up to `jitter` of that interval: never
faster than the rate, and several runs sharing an account do not fall into lock step.

The pool also counts what it was used for: busy slot-seconds (time slots were held) over
available slot-seconds (slots times the time measured), e.g. for a benchmark.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Grant:
    """A slot held; give it back with `TrialPool.release`."""

    number: int
    priority: int
    since: float


@dataclass(frozen=True)
class PoolStats:
    slots: int
    busy: float  # slot-seconds held since the measure began
    available: float  # slots x seconds since the measure began
    granted: int  # grants since the measure began
    in_use: int  # slots held now
    waiting: int  # requests not granted yet

    @property
    def utilisation(self) -> float:
        return self.busy / self.available if self.available else 0.0

    def line(self) -> str:
        """E.g. `trial slots: 812 / 1024 slot-seconds busy (79%)`, for a log or a benchmark."""
        return (f"trial slots: {self.busy:.0f} / {self.available:.0f} slot-seconds busy "
                f"({self.utilisation:.0%})")  # fmt: skip


class TrialPool:
    """`slots` trials at once across every job that is given this pool.

        pool = TrialPool(32, start_rate=4)
        async with pool.slot(priority=1):
            ...  # or: grant = await pool.acquire(1); ...; pool.release(grant)
    """

    def __init__(self, slots: int, start_rate: float | None = None, jitter: float = 0.25,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if slots < 1:
            raise ValueError(f"a trial pool needs at least one slot, not {slots}")
        if start_rate is not None and start_rate <= 0:
            raise ValueError(f"start_rate must be positive (starts per second), not {start_rate}")
        self.slots = slots
        self.start_rate = start_rate
        self.jitter = jitter
        self._clock = clock
        self._order = itertools.count()
        self._waiting: list[tuple[int, int, asyncio.Future]] = []  # a heap: (priority, order, future)
        self._held: dict[int, Grant] = {}
        self._next_start = 0.0  # the clock's time before which no grant goes out (start_rate)
        self._timer: asyncio.TimerHandle | None = None
        self._timer_loop: asyncio.AbstractEventLoop | None = None
        self.measure()

    def measure(self) -> None:
        """Begin measuring utilisation now (the pool does when it is made)."""
        self._measured_from = self._clock()
        self._busy_done = 0.0
        self._granted = 0

    def stats(self) -> PoolStats:
        now = self._clock()
        held = sum(now - max(grant.since, self._measured_from) for grant in self._held.values())
        return PoolStats(
            slots=self.slots, busy=self._busy_done + held, available=self.slots * (now - self._measured_from),
            granted=self._granted, in_use=len(self._held), waiting=sum(not f.done() for *_, f in self._waiting),
        )  # fmt: skip

    async def acquire(self, priority: int = 0) -> Grant:
        """Wait for a slot; lower `priority` values are served first."""
        future = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._order), future))
        self._dispatch()
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():  # granted just as the waiter gave up
                self.release(future.result())
            self._dispatch()
            raise

    def release(self, grant: Grant) -> None:
        """Give a slot back (a second release of the same grant does nothing)."""
        if self._held.pop(grant.number, None) is None:
            return
        self._busy_done += self._clock() - max(grant.since, self._measured_from)
        self._dispatch()

    @contextlib.asynccontextmanager
    async def slot(self, priority: int = 0) -> AsyncIterator[Grant]:
        grant = await self.acquire(priority)
        try:
            yield grant
        finally:
            self.release(grant)

    def _dispatch(self) -> None:
        """Grant free slots to the first waiters, no faster than the start rate."""
        while self._waiting and self._waiting[0][2].done():  # cancelled waiters
            heapq.heappop(self._waiting)
        while self._waiting and len(self._held) < self.slots:
            now = self._clock()
            if now < self._next_start:
                loop = asyncio.get_running_loop()
                if self._timer is None or self._timer_loop is not loop:  # none yet, or an ended run's
                    self._timer, self._timer_loop = loop.call_later(self._next_start - now, self._wake), loop
                return
            priority, number, future = heapq.heappop(self._waiting)
            if future.done():
                continue
            grant = Grant(number, priority, now)
            self._held[number] = grant
            self._granted += 1
            future.set_result(grant)
            if self.start_rate:
                self._next_start = now + (1 + random.uniform(0, self.jitter)) / self.start_rate

    def _wake(self) -> None:
        self._timer = None
        self._dispatch()
