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
from autoagent import faults, scripted
from autoagent.spend import ROLE_ENV, Meter, configured_price

if TYPE_CHECKING:
    from litellm import ModelResponse

logger = logging.getLogger(__name__)
SCRIPTED = scripted.PROVIDER
TIMEOUT_ENV = "AUTOAGENT_MODEL_TIMEOUT_SEC"  # the per-call limit, for processes the run starts
DEFAULT_TIMEOUT_SEC = 600.0  # one model call; LiteLLM's own default is 6,000 s
NO_KEY = "no-key"  # what a local OpenAI-compatible server gets as a key: the client needs one


@functools.cache
def _litellm():
    """LiteLLM, imported on first use: it takes seconds, and most commands never call a model."""
    import litellm

    litellm.suppress_debug_info = True
    scripted.register(litellm)
    return litellm


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

    Provider faults leave as `faults.ModelConfigurationError` (permanent: fix a setting) or
    `faults.ModelUnavailableError` (transient, persisted after the retries). Every call has
    a time limit: `timeout` in seconds, else $AUTOAGENT_MODEL_TIMEOUT_SEC, else 600.
    Inside `autoagent run`, the call is refused once the run's budget is spent, and
    its cost is recorded under `role` (default: $AUTOAGENT_ROLE, else "task").
    """
    role = role or os.environ.get(ROLE_ENV, "task")
    meter = Meter.from_env()
    if meter is not None:  # refuse a call whose prompt alone would cross the budget
        meter.check(role, prompt_cost(model, messages, tools))
    if model.startswith(f"{SCRIPTED}/"):
        turn = scripted.answer(model, messages)
        await scripted.await_turn(turn)
        reply = _scripted_reply(turn)
    else:
        if "api_key" not in settings:
            settings = {**credentials(model, api_base, role), **settings}
        settings.setdefault("timeout", call_timeout())
        reply = await _with_retries(model, messages, tools, api_base, backoff or Backoff(), settings, role)
    if meter is not None:
        meter.record(role=role, model=model, cost_usd=reply.cost_usd,
                     input_tokens=reply.input_tokens, output_tokens=reply.output_tokens)  # fmt: skip
    return reply


async def _with_retries(model, messages, tools, api_base, backoff: Backoff, settings, role) -> Reply:
    deadline = float(settings["timeout"]) + 5.0  # ours, should the client not keep its own
    for attempt in range(backoff.attempts):
        try:
            async with asyncio.timeout(deadline):
                response = await _litellm().acompletion(
                    model=model,
                    messages=messages,
                    tools=tools or None,
                    api_base=api_base,
                    max_retries=0,  # one retry layer: this one
                    **settings,
                )
            return _reply(response, model, retries=attempt)
        except Exception as error:
            if not faults.is_transient(error):
                if faults.is_permanent(error):
                    raise faults.configuration_error(error, model, api_base, _setting(role)) from error
                raise  # not the provider's: the budget, or a bug
            if attempt == backoff.attempts - 1:
                raise faults.unavailable_error(error, model, api_base, backoff.attempts) from error
            delay = backoff.delay(attempt, error)
            logger.warning(
                "%s from %s; retry %d/%d in %.1f s",
                type(error).__name__, model, attempt + 1, backoff.attempts - 1, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")


def call_timeout() -> float:
    """Seconds one model call may take: $AUTOAGENT_MODEL_TIMEOUT_SEC, else the default."""
    try:
        return float(os.environ.get(TIMEOUT_ENV) or DEFAULT_TIMEOUT_SEC)
    except ValueError:
        return DEFAULT_TIMEOUT_SEC


def credentials(model: str, api_base: str | None, role: str | None = None) -> dict[str, Any]:
    """The key settings a call needs: none when the environment has the key; a placeholder
    for a local server (api_base) without one; a `ModelConfigurationError` naming the
    variable otherwise, before any request is made."""
    missing = missing_keys(model, api_base)
    if not missing:
        return {}
    if api_base:
        return {"api_key": NO_KEY}
    raise faults.missing_key_error(model, missing, _setting(role))


def missing_keys(model: str, api_base: str | None = None) -> list[str]:
    """The environment variables `model` needs and does not have (any one of them will do)."""
    if model.startswith(f"{SCRIPTED}/"):
        return []
    try:
        return list(_litellm().validate_environment(model, api_base=api_base).get("missing_keys") or [])
    except Exception:  # a provider LiteLLM cannot check: let the call say
        return []


def _setting(role: str | None) -> str:
    return "[meta] model" if role == "meta" else "[agent] model"


def _reply(response: ModelResponse, model: str, retries: int) -> Reply:
    if not getattr(response, "choices", None) or getattr(response.choices[0], "message", None) is None:
        raise faults.MalformedReplyError(f"a reply with no choices: {str(response)[:200]}")
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
        cost_usd=cost_of(response, model),
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


def cost_of(response: ModelResponse, model: str | None = None) -> float | None:
    """USD cost: at the price autoagent.toml gives for `model`, else LiteLLM's; None when
    there is no price (a local server)."""
    if (response.model or "").startswith(f"{SCRIPTED}/"):
        return scripted.cost(response)
    price = configured_price(model or response.model or "")
    if price is not None:
        usage = getattr(response, "usage", None)
        tokens = (getattr(usage, "prompt_tokens", 0) or 0, getattr(usage, "completion_tokens", 0) or 0)
        return (tokens[0] * price[0] + tokens[1] * price[1]) / 1e6
    try:
        return float(_litellm().completion_cost(completion_response=response))
    except Exception:  # LiteLLM raises a bare Exception for unknown models
        return None


def prompt_cost(model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> float:
    """What the prompt of a call will cost, known before the call (0 when there is no price)."""
    if model.startswith(f"{SCRIPTED}/"):
        return scripted.prompt_cost(model, messages)
    price = configured_price(model)
    try:
        litellm = _litellm()
        tokens = litellm.token_counter(model=model, messages=messages, tools=tools)
        per_token = price[0] / 1e6 if price else litellm.get_model_info(model).get("input_cost_per_token") or 0.0
    except Exception:  # an unknown model (a local server): no price, no estimate
        return 0.0
    return tokens * per_token


def usage_cost(model: str, input_tokens: int, output_tokens: int) -> float | None:
    """USD for token counts at the model's price (None when there is no price)."""
    price = configured_price(model)
    if price is not None:
        return (input_tokens * price[0] + output_tokens * price[1]) / 1e6
    try:
        prompt, completion = _litellm().cost_per_token(
            model=model, prompt_tokens=input_tokens, completion_tokens=output_tokens
        )
    except Exception:  # an unknown model: no price
        return None
    return prompt + completion


def has_price(model: str) -> bool:
    """Does a call to `model` get a USD cost (a configured price, LiteLLM's, a script's)?"""
    if model.startswith(f"{SCRIPTED}/") or configured_price(model) is not None:
        return True
    try:
        info = _litellm().get_model_info(model)
    except Exception:
        return False
    return bool(info.get("input_cost_per_token") or info.get("output_cost_per_token"))


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
