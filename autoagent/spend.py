"""The spend meter: what every model call of a run cost, by role, across processes.

`autoagent run` points every process it starts at one file (AUTOAGENT_SPEND_FILE).
Each model call appends a line to it; before a call, the model layer refuses to
go on once the run's budget (AUTOAGENT_BUDGET_USD) is spent. So a budget holds
even inside an evaluation, and the spend by role (the task agent, the meta-agent)
can always be traced to one file.
"""

from __future__ import annotations

import json
import os
import time
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path

from autoagent import jsonl

FILE_ENV = "AUTOAGENT_SPEND_FILE"
BUDGET_ENV = "AUTOAGENT_BUDGET_USD"
ROLE_ENV = "AUTOAGENT_ROLE"
EXPERIMENT_ENV = "AUTOAGENT_EXPERIMENT"
ROLES = ("task", "meta")
PRICES_ENV = "AUTOAGENT_PRICES"  # {model: [USD per million input tokens, per million output]}
# The experiment a call is for, in this process: several candidates are proposed at once, each in
# a task of its own (a ContextVar follows its task). Processes started for one experiment (a job's
# worker) are told by EXPERIMENT_ENV instead.
EXPERIMENT: ContextVar[str | None] = ContextVar("autoagent_experiment", default=None)


def experiment() -> str | None:
    """The experiment the calls made here are for, if any."""
    return EXPERIMENT.get() or os.environ.get(EXPERIMENT_ENV)


def configured_price(model: str) -> tuple[float, float] | None:
    """The price autoagent.toml gives for `model` (USD per million input, output tokens)."""
    try:
        price = json.loads(os.environ.get(PRICES_ENV) or "{}").get(model)
    except (json.JSONDecodeError, AttributeError):
        return None
    return (float(price[0]), float(price[1])) if price else None


def money(usd: float, unknown: bool = False, digits: int = 4) -> str:
    """"$0.4200", or "$0.4200 + unknown" when some calls had no price: never a silent $0."""
    return f"${usd:.{digits}f}" + (" + unknown" if unknown else "")


class BudgetExceededError(RuntimeError):
    """The run's USD budget is spent. (Harbor knows this name: not retried.)"""


@dataclass
class Meter:
    path: Path
    budget_usd: float | None = None

    @classmethod
    def from_env(cls) -> Meter | None:
        path = os.environ.get(FILE_ENV)
        if not path:
            return None
        budget = os.environ.get(BUDGET_ENV)
        return cls(Path(path), float(budget) if budget else None)

    def record(self, *, role: str, model: str, cost_usd: float | None,
               input_tokens: int, output_tokens: int) -> None:  # fmt: skip
        self._append({
            "time": time.time(), "role": role,
            "experiment": experiment(), "model": model,
            "cost_usd": cost_usd, "input_tokens": input_tokens, "output_tokens": output_tokens,
        })  # fmt: skip

    def _append(self, entry: dict) -> None:
        jsonl.append(self.path, entry)

    def entries(self) -> list[dict]:
        return jsonl.read(self.path)

    def spent(self, role: str | None = None, experiment: str | None = None) -> float:
        """USD of the calls with a known cost (see `unpriced` for the others)."""
        return sum(entry["cost_usd"] or 0.0 for entry in self._select(self.entries(), role, experiment))

    def unpriced(self, role: str | None = None, experiment: str | None = None, since: float = 0.0) -> int:
        """Calls whose cost is unknown (a model without a price): `spent` leaves them out."""
        return sum(1 for entry in self._select(self.entries(), role, experiment, since) if _unpriced(entry))

    def by_role(self, experiment: str | None = None, since: float = 0.0) -> tuple[dict[str, float], list[str]]:
        """USD by role (task, meta), and the roles with calls of unknown cost besides (of one
        experiment, or all; of the calls since a time.time(), or all)."""
        entries = self.entries()
        spent = {role: sum(e["cost_usd"] or 0.0 for e in self._select(entries, role, experiment, since))
                 for role in ROLES}  # fmt: skip
        unknown = [role for role in ROLES if any(map(_unpriced, self._select(entries, role, experiment, since)))]
        return spent, unknown

    @staticmethod
    def _select(entries: list[dict], role: str | None, experiment: str | None, since: float = 0.0) -> list[dict]:
        return [
            entry for entry in entries
            if (role is None or entry["role"] == role)
            and (experiment is None or entry["experiment"] == experiment)
            and entry["time"] >= since
        ]  # fmt: skip

    def refusals(self, since: float = 0.0) -> int:
        return sum(1 for entry in self.entries() if entry.get("refused") and entry["time"] >= since)

    def check(self, role: str, next_cost: float = 0.0) -> None:
        """Refuse a call that would take the spend past the budget (and record the refusal)."""
        if self.budget_usd is None:
            return
        spent = self.spent()
        if spent + next_cost > self.budget_usd:
            self._append({"time": time.time(), "role": role, "experiment": experiment(),
                          "cost_usd": 0.0, "refused": True, "next_cost_usd": next_cost})  # fmt: skip
            raise BudgetExceededError(
                f"The run's budget of ${self.budget_usd:.2f} is spent: ${spent:.4f} so far, "
                f"and the next model call's prompt alone costs ${next_cost:.4f}"
            )


def _unpriced(entry: dict) -> bool:
    return entry.get("cost_usd") is None and not entry.get("refused")
