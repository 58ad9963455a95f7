"""How a run runs: its models, where and how wide its trials go, how it decides, its budget.

`Settings.from_workspace` reads them from autoagent.toml (with the command line's overrides).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from autoagent.meta import agent as meta_agent
from autoagent.strategies import cheaper
from autoagent.strategies import gate as gates
from autoagent.strategies.budget import Budget
from autoagent.strategies.gate import Gate
from autoagent.workspace import Workspace


@dataclass
class Settings:
    model: str
    api_base: str | None = None
    meta_model: str | None = None
    meta_api_base: str | None = None
    environment: str = "sandbox"
    environment_kwargs: dict = field(default_factory=dict)
    concurrency: int = 4  # trial slots, shared by every candidate's evaluations (evaluate/pool.py)
    start_rate: float | None = None  # sandbox starts per second at most
    candidates: int = 1  # in flight at once, each proposed and judged on its own
    parents: str = "best"  # where a proposal starts from (strategies/parents.py)
    attempts: int = 1
    include: list[str] | None = None
    exclude: list[str] | None = None
    budget: Budget = field(default_factory=Budget)
    gate: Gate = field(default_factory=gates.PairedGate)
    canaries: int = 5
    baseline_attempts: int = 2  # the baseline runs more than once: the noise floor
    splits: dict = field(default_factory=dict)  # held_out, test, fractions, seed
    limits: meta_agent.Limits = field(default_factory=meta_agent.Limits)
    meta_backend: str = "builtin"  # or "claude-code"
    retry_wait_sec: float = 30.0  # after a failed proposal; doubles up to 10 minutes
    cost_measure: str = "auto"  # compared at equal score (effort.py), when the gate is score-then-cost

    def eval_options(self) -> dict:
        """How every evaluation of the harness runs: its model and endpoint, where, how wide."""
        return dict(
            model=self.model, agent_kwargs={"api_base": self.api_base} if self.api_base else None,
            environment=self.environment, environment_kwargs=self.environment_kwargs,
            n_concurrent=self.concurrency,
        )  # fmt: skip

    def meta_endpoint(self) -> tuple[str, str | None]:
        """The meta-agent's model and endpoint: its own if set, else the task agent's (the same
        model on both sides works best, the reference system's finding), endpoint and all."""
        if self.meta_model:
            return self.meta_model, self.meta_api_base
        return self.model, self.meta_api_base or self.api_base

    @classmethod
    def from_workspace(cls, workspace: Workspace, **overrides) -> Settings:
        config = workspace.config
        values = dict(
            model=config.agent.model, api_base=config.agent.api_base,
            meta_model=config.meta.model, meta_api_base=config.meta.api_base,
            environment=config.run.environment, environment_kwargs=config.run.environment_kwargs,
            concurrency=config.run.concurrency, start_rate=config.run.start_rate,
            attempts=config.run.attempts, candidates=config.run.candidates,
            include=config.tasks.include or None, exclude=config.tasks.exclude or None,
            budget=Budget(config.budget.iterations, config.budget.hours, config.budget.usd),
            limits=meta_agent.Limits(config.meta.max_turns, config.meta.max_minutes * 60, config.meta.max_usd,
                                     config.meta.timeout_sec),
            gate=cheaper.with_objective(gates.make(config.decision.gate, confidence=config.decision.confidence,
                                                   max_rounds=config.decision.max_rounds), config.decision.objective),
            cost_measure=config.decision.cost_measure, parents=config.decision.parents,
            canaries=config.decision.canaries, baseline_attempts=config.decision.baseline_attempts,
            splits=config.splits.model_dump(), meta_backend=config.meta.backend,
        )  # fmt: skip
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
