"""Failures in a row, across every candidate in flight: how long to wait, and when to give up.

A failed proposal or an evaluation that measured nothing (evaluate/infra.py) makes the next
start wait longer (30 s doubling, up to 10 minutes); any decision made resets the count.
Evaluations in a row that measured nothing are an outage: the run stops, and resumes later.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from autoagent.evaluate.infra import outage

LONGEST_WAIT_SEC = 600.0


@dataclass
class Backoff:
    wait_sec: float = 30.0  # after the first failure; doubles with each one after it
    failures: int = 0  # failed proposals and unmeasured evaluations, in a row
    unmeasured: int = 0  # evaluations that measured nothing, in a row

    def proposal_failed(self) -> None:
        self.failures += 1

    def measured_nothing(self) -> None:
        self.failures += 1
        self.unmeasured += 1

    def decided(self) -> None:
        self.failures = self.unmeasured = 0

    def outage(self) -> str | None:
        """Why the run should stop now, or None."""
        return outage(self.unmeasured)

    async def wait(self, waiting: Callable[[], None] | None = None) -> None:
        """Wait as long as the failures in a row ask for (not at all after a success)."""
        if self.failures:
            if waiting is not None:
                waiting()
            await asyncio.sleep(min(LONGEST_WAIT_SEC, self.wait_sec * 2 ** (self.failures - 1)))
