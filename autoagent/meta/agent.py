"""The built-in meta-agent: a tool-calling loop that edits the harness and submits.

It ends with a submission, or with `MetaAgentError` when it runs out of turns,
time (the whole proposal: model calls, tools and spot checks) or money, or its provider
stays unavailable; the loop records that and goes on. A `ModelConfigurationError` (a
wrong key, an unknown model) is not the proposal's failure: it goes up and stops the run.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

from autoagent.faults import ModelConfigurationError
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
    call_seconds: float | None = None  # one model call; None: llm's default
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
    spent = [0.0]
    deadline = asyncio.timeout(limits.seconds)  # the whole proposal, not only between turns
    try:
        async with deadline:
            return await _turns(llm, tools, messages, spent, model, api_base, limits)
    except TimeoutError:
        if not deadline.expired():
            raise
        raise MetaAgentError(f"no submission within {limits.seconds:.0f} s") from None
    finally:
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(json.dumps({"cost_usd": spent[0], "messages": messages}, indent=1))


async def _turns(llm, tools: MetaTools, messages: list, spent: list[float], model: str,
                 api_base: str | None, limits: Limits) -> Proposal:  # fmt: skip
    settings = {"timeout": limits.call_seconds} if limits.call_seconds else {}
    for turn in range(1, limits.turns + 1):
        if spent[0] >= limits.usd:
            raise MetaAgentError(f"no submission within ${limits.usd:.2f}")
        try:
            reply = await llm.complete(model, messages, tools.schemas(), api_base=api_base, role="meta",
                                       backoff=limits.backoff, **settings)  # fmt: skip
        except ModelConfigurationError:
            raise  # a setting to fix: the run stops and says which
        except Exception as error:  # the provider, after its retries; or the budget
            raise MetaAgentError(f"the model call failed: {type(error).__name__}: {error}") from error
        spent[0] += reply.cost_usd or 0.0
        messages.append(reply.message)
        if not reply.tool_calls:
            messages.append({"role": "user", "content": NUDGE})
            continue
        for call in reply.tool_calls:
            output = await tools.call(call.name, call.arguments)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": output})
        if tools.submission is not None:
            return Proposal(tools.submission, spent[0], turn)
    raise MetaAgentError(f"no submission within {limits.turns} turns")
