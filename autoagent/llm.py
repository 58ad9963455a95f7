"""The one model layer: LiteLLM with retries and backoff, usage and USD cost.

`complete()` is the only call the harness and the meta-agent make. Any LiteLLM name
works (`anthropic/...`, `openai/...`, `hosted_vllm/...` with `api_base`), and so do
`scripted/<name>` models (see `scripted.py`), which replay a scripted conversation so
that everything runs offline: tests, the demo, CI.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import os
import random
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import autoagent  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP before litellm loads)
from autoagent import scripted
from autoagent.spend import ROLE_ENV, Meter

if TYPE_CHECKING:
    from litellm import ModelResponse

logger = logging.getLogger(__name__)
SCRIPTED = scripted.PROVIDER


@functools.cache
def _litellm():
    """LiteLLM, imported on first use: it takes seconds, and most commands never call a model."""
    import litellm

    litellm.suppress_debug_info = True
    scripted.register(litellm)
    return litellm


@functools.cache
def _retryable() -> tuple[type[Exception], ...]:
    """Worth another try: the provider is busy, down for a moment, or the connection dropped."""
    litellm = _litellm()
    return (
        litellm.RateLimitError,
        litellm.APIConnectionError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.Timeout,
    )


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: dict[str, Any]


@dataclass
class Reply:
    """One model turn: the assistant message to append, and what it cost."""

    message: dict[str, Any]  # OpenAI format, ready to append to `messages`
    content: str
    reasoning: str | None
    tool_calls: list[ToolCall]
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: float | None = None  # None: the model has no known price
    retries: int = 0


@dataclass
class Backoff:
    attempts: int = 8
    base_sec: float = 1.0
    max_sec: float = 60.0

    def delay(self, attempt: int, error: Exception) -> float:
        hinted = _retry_after(error)
        if hinted is not None:
            return min(hinted, self.max_sec)
        return min(self.max_sec, self.base_sec * 2**attempt) * random.uniform(0.5, 1.0)


async def complete(
    model: str,
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None = None,
    *,
    api_base: str | None = None,
    backoff: Backoff | None = None,
    role: str | None = None,
    **settings: Any,
) -> Reply:
    """Ask `model` for its next turn, retrying rate limits and outages with backoff.

    Inside `autoagent run`, the call is refused once the run's budget is spent, and
    its cost is recorded under `role` (default: $AUTOAGENT_ROLE, else "task").
    """
    role = role or os.environ.get(ROLE_ENV, "task")
    meter = Meter.from_env()
    if meter is not None:  # refuse a call whose prompt alone would cross the budget
        meter.check(role, prompt_cost(model, messages, tools))
    if model.startswith(f"{SCRIPTED}/"):
        reply = _scripted_reply(scripted.answer(model, messages))
    else:
        reply = await _with_retries(model, messages, tools, api_base, backoff or Backoff(), settings)
    if meter is not None:
        meter.record(role=role, model=model, cost_usd=reply.cost_usd,
                     input_tokens=reply.input_tokens, output_tokens=reply.output_tokens)  # fmt: skip
    return reply


async def _with_retries(model, messages, tools, api_base, backoff: Backoff, settings) -> Reply:
    for attempt in range(backoff.attempts):
        try:
            response = await _litellm().acompletion(
                model=model,
                messages=messages,
                tools=tools or None,
                api_base=api_base,
                max_retries=0,  # one retry layer: this one
                **settings,
            )
            return _reply(response, retries=attempt)
        except _retryable() as error:
            if attempt == backoff.attempts - 1:
                raise
            delay = backoff.delay(attempt, error)
            logger.warning(
                "%s from %s; retry %d/%d in %.1f s",
                type(error).__name__, model, attempt + 1, backoff.attempts - 1, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


def _reply(response: ModelResponse, retries: int) -> Reply:
    choice = response.choices[0].message
    calls = [
        ToolCall(call.id, call.function.name, _arguments(call.function.arguments))
        for call in choice.tool_calls or []
    ]
    message: dict[str, Any] = {"role": "assistant", "content": choice.content or ""}
    if choice.tool_calls:
        message["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
            for call in choice.tool_calls
        ]
    usage = getattr(response, "usage", None)
    details = getattr(usage, "prompt_tokens_details", None)
    return Reply(
        message=message,
        content=choice.content or "",
        reasoning=getattr(choice, "reasoning_content", None) or None,
        tool_calls=calls,
        input_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        output_tokens=getattr(usage, "completion_tokens", 0) or 0,
        cached_tokens=getattr(details, "cached_tokens", 0) or 0,
        cost_usd=cost_of(response),
        retries=retries,
    )


def _scripted_reply(turn: dict[str, Any]) -> Reply:
    message: dict[str, Any] = {"role": "assistant", "content": turn["content"]}
    if turn["tool_calls"]:
        message["tool_calls"] = [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
            for c in turn["tool_calls"]
        ]  # fmt: skip
    return Reply(
        message=message,
        content=turn["content"],
        reasoning=turn["reasoning"],
        tool_calls=[ToolCall(c["id"], c["name"], c["arguments"]) for c in turn["tool_calls"]],
        input_tokens=turn["prompt_tokens"],
        output_tokens=turn["completion_tokens"],
        cost_usd=turn["cost_usd"],
    )


def _arguments(raw: str | dict | None) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    try:
        parsed = json.loads(raw or "{}")
    except json.JSONDecodeError:
        return {"_unparsed": raw}
    return parsed if isinstance(parsed, dict) else {"_value": parsed}


def cost_of(response: ModelResponse) -> float | None:
    """USD cost, or None when LiteLLM has no price for the model (a local server)."""
    if (response.model or "").startswith(f"{SCRIPTED}/"):
        return scripted.cost(response)
    try:
        return float(_litellm().completion_cost(completion_response=response))
    except Exception:  # LiteLLM raises a bare Exception for unknown models
        return None


def prompt_cost(model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> float:
    """What the prompt of a call will cost, known before the call (0 when there is no price)."""
    if model.startswith(f"{SCRIPTED}/"):
        return scripted.prompt_cost(model, messages)
    try:
        litellm = _litellm()
        tokens = litellm.token_counter(model=model, messages=messages, tools=tools)
        price = litellm.get_model_info(model).get("input_cost_per_token") or 0.0
    except Exception:  # an unknown model (a local server): no price, no estimate
        return 0.0
    return tokens * price


def usage_cost(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """USD for token counts at the model's list price (None when there is no price)."""
    try:
        prompt, completion = _litellm().cost_per_token(
            model=model, prompt_tokens=input_tokens, completion_tokens=output_tokens
        )
    except Exception:  # an unknown model: no price
        return None
    return prompt + completion


def _retry_after(error: Exception) -> float | None:
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return float(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None


def model_problem(model: str, api_base: str | None = None) -> str | None:
    """Why LiteLLM cannot call `model`, in one sentence; None if it can."""
    if model.startswith(f"{SCRIPTED}/"):
        try:
            scripted.find_script(model.split("/", 1)[1])
        except FileNotFoundError as error:
            return str(error)
        return None
    litellm = _litellm()
    try:
        _, provider, _, _ = litellm.get_llm_provider(model, api_base=api_base)
    except Exception:
        return (
            f"LiteLLM does not know the model {model!r}. Use a LiteLLM name such as "
            "anthropic/claude-sonnet-4-5 or openai/gpt-5, or hosted_vllm/<name> (or "
            "openai/<name>) with api_base for an OpenAI-compatible local server."
        )
    if "/" not in model and provider and model not in litellm.model_cost:
        return f"LiteLLM does not know the model {model!r}; prefix its provider, e.g. {provider}/{model}."
    return None
