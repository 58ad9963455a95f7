"""Record a harness run as an ATIF trajectory (Harbor's `trajectory.json`).

The harness calls `system`, `user`, `agent` (one model turn) and `observe` (one tool
result); the recorder keeps the totals Harbor wants in its context and rewrites the
file after every step, so a run cut short by a timeout still leaves a valid trace.
Every save goes through Harbor's own pydantic models, which validate it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harbor.models.agent.context import AgentContext
from harbor.models.trajectories import (
    Agent,
    FinalMetrics,
    Metrics,
    Observation,
    ObservationResult,
    Step,
    ToolCall,
    Trajectory,
)

if TYPE_CHECKING:
    from autoagent.llm import Reply


class TrajectoryRecorder:
    def __init__(
        self,
        path: Path,
        *,
        agent_name: str,
        version: str,
        model: str,
        tools: list[dict[str, Any]] | None = None,
        session_id: str | None = None,
    ) -> None:
        self.path = path
        self.model = model
        self.agent = Agent(name=agent_name, version=version, model_name=model, tool_definitions=tools)
        self.session_id = session_id
        self.steps: list[Step] = []
        self.input_tokens = self.output_tokens = self.cached_tokens = 0
        self.cost_usd: float | None = 0.0  # None once any turn had no known price

    def system(self, text: str) -> None:
        self._add(source="system", message=text)

    def user(self, text: str) -> None:
        self._add(source="user", message=text)

    def agent_turn(self, reply: Reply, model: str | None = None) -> None:
        """One model turn: its text, reasoning, tool calls and usage."""
        self.input_tokens += reply.input_tokens
        self.output_tokens += reply.output_tokens
        self.cached_tokens += reply.cached_tokens
        if self.cost_usd is not None:
            self.cost_usd = None if reply.cost_usd is None else self.cost_usd + reply.cost_usd
        self._add(
            source="agent",
            message=reply.content,
            model_name=model if model and model != self.model else None,
            reasoning_content=reply.reasoning,
            tool_calls=[ToolCall(tool_call_id=c.id, function_name=c.name, arguments=c.arguments)
                        for c in reply.tool_calls] or None,  # fmt: skip
            metrics=Metrics(
                prompt_tokens=reply.input_tokens,
                completion_tokens=reply.output_tokens,
                cached_tokens=reply.cached_tokens,
                cost_usd=reply.cost_usd,
                extra={"retries": reply.retries} if reply.retries else None,
            ),
            llm_call_count=1,
        )

    def observe(self, call_id: str, output: str) -> None:
        """A tool's result, attached to the agent turn that called it."""
        step = next(s for s in reversed(self.steps) if s.source == "agent")
        result = ObservationResult(source_call_id=call_id, content=output)
        if step.observation is None:
            step.observation = Observation(results=[result])
        else:
            step.observation.results.append(result)
        self.save()

    def _add(self, **fields: Any) -> None:
        self.steps.append(
            Step(step_id=len(self.steps) + 1, timestamp=datetime.now(UTC).isoformat(), **fields)
        )
        self.save()

    def trajectory(self) -> Trajectory:
        return Trajectory(
            session_id=self.session_id,
            agent=self.agent,
            steps=self.steps,
            final_metrics=FinalMetrics(
                total_prompt_tokens=self.input_tokens,
                total_completion_tokens=self.output_tokens,
                total_cached_tokens=self.cached_tokens,
                total_cost_usd=self.cost_usd,
                total_steps=len(self.steps),
            ),
        )

    def save(self) -> None:
        if not self.steps:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(self.trajectory().to_json_dict(), indent=2))
        temporary.replace(self.path)

    def fill(self, context: AgentContext) -> None:
        """Tokens and cost into Harbor's context, so they land in the trial result."""
        context.n_input_tokens = self.input_tokens
        context.n_output_tokens = self.output_tokens
        context.n_cache_tokens = self.cached_tokens
        context.cost_usd = self.cost_usd
