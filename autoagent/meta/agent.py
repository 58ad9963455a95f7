"""The built-in meta-agent: a tool-calling loop that edits the harness and submits.

It ends with a submission, or with `MetaAgentError` when it runs out of turns,
time or money, or its provider fails for good; the loop records that and goes on.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from autoagent.meta.brief import SYSTEM_PROMPT
from autoagent.meta.tools import MetaTools, Submission

NUDGE = "Continue with the tools. When your change is made, call submit."


class MetaAgentError(RuntimeError):
    """No submission this time: why, in one sentence."""


@dataclass
class Limits:
    turns: int = 40
    seconds: float = 1800
    usd: float = 5.0
    backoff: object = None  # an llm.Backoff for the provider's hiccups; None: the default


@dataclass
class Proposal:
    submission: Submission
    cost_usd: float
    turns: int


async def propose(
    tools: MetaTools,
    brief: str,
    *,
    model: str,
    api_base: str | None = None,
    limits: Limits = Limits(),
    log: Path | None = None,
) -> Proposal:
    from autoagent import llm  # LiteLLM is slow to import: only when a proposal is due

    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": brief}]
    started, cost = time.monotonic(), 0.0
    try:
        for turn in range(1, limits.turns + 1):
            if time.monotonic() - started > limits.seconds:
                raise MetaAgentError(f"no submission within {limits.seconds:.0f} s")
            if cost >= limits.usd:
                raise MetaAgentError(f"no submission within ${limits.usd:.2f}")
            try:
                reply = await llm.complete(
                    model, messages, tools.schemas(), api_base=api_base, role="meta", backoff=limits.backoff
                )
            except Exception as error:  # the provider, after its retries; or the budget
                raise MetaAgentError(f"the model call failed: {type(error).__name__}: {error}") from error
            cost += reply.cost_usd or 0.0
            messages.append(reply.message)
            if not reply.tool_calls:
                messages.append({"role": "user", "content": NUDGE})
                continue
            for call in reply.tool_calls:
                output = await tools.call(call.name, call.arguments)
                messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
            if tools.submission is not None:
                return Proposal(tools.submission, cost, turn)
        raise MetaAgentError(f"no submission within {limits.turns} turns")
    finally:
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(json.dumps({"cost_usd": cost, "messages": messages}, indent=1))
