"""When the loop stops: never on its own, only at a budget (or on Ctrl-C)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Budget:
    iterations: int | None = None  # proposals after the baseline, failed ones included
    hours: float | None = None
    usd: float | None = None  # task runs and the meta-agent together

    def exhausted(self, *, iterations: int, hours: float, usd: float) -> str | None:
        """Why the run must stop now, or None."""
        if self.iterations is not None and iterations >= self.iterations:
            return f"{iterations} iterations done (--iterations {self.iterations})"
        if self.hours is not None and hours >= self.hours:
            return f"{hours:.2f} h elapsed (--hours {self.hours:g})"
        if self.usd is not None and usd >= self.usd:
            return f"${usd:.4f} spent (--budget-usd {self.usd:g})"
        return None
