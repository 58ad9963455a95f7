"""The one model layer: LiteLLM with retries and backoff, usage and USD cost.

`complete()` is the only call the harness and the meta-agent make. Any LiteLLM name
works (`anthropic/...`, `openai/...`, `hosted_vllm/...` with `api_base`), and so do
`scripted/<name>` models, which replay a scripted conversation so that everything
runs offline: tests, the demo, CI.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import re
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import autoagent  # noqa: F401  (sets LITELLM_LOCAL_MODEL_COST_MAP before litellm loads)
from autoagent.spend import ROLE_ENV, Meter  # noqa: E402

import litellm  # noqa: E402
from litellm import CustomLLM  # noqa: E402
from litellm.types.utils import ChatCompletionMessageToolCall, Function, Message, ModelResponse, Usage  # noqa: E402

logger = logging.getLogger(__name__)
litellm.suppress_debug_info = True

# Worth another try: the provider is busy, down for a moment, or the connection dropped.
RETRYABLE = (
    litellm.RateLimitError,
    litellm.APIConnectionError,
    litellm.InternalServerError,
    litellm.ServiceUnavailableError,
    litellm.Timeout,
)
SCRIPTED = "scripted"
BUNDLED_SCRIPTS = Path(__file__).parent / "examples" / "scripts"
DEFAULT_SCRIPTED_PRICE = {"input": 1.0, "output": 5.0}  # USD per million tokens, made up


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
    backoff = backoff or Backoff()
    meter = Meter.from_env()
    if meter is not None:  # refuse a call whose prompt alone would cross the budget
        meter.check(role or os.environ.get(ROLE_ENV, "task"), prompt_cost(model, messages, tools))
    for attempt in range(backoff.attempts):
        try:
            response = await litellm.acompletion(
                model=model,
                messages=messages,
                tools=tools or None,
                api_base=api_base,
                max_retries=0,  # one retry layer: this one
                **settings,
            )
            reply = _reply(response, retries=attempt)
            if meter is not None:
                meter.record(
                    role=role or os.environ.get(ROLE_ENV, "task"), model=model,
                    cost_usd=reply.cost_usd, input_tokens=reply.input_tokens,
                    output_tokens=reply.output_tokens,
                )  # fmt: skip
            return reply
        except RETRYABLE as error:
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
        return _scripted_cost(response)
    try:
        return float(litellm.completion_cost(completion_response=response))
    except Exception:  # LiteLLM raises a bare Exception for unknown models
        return None


def prompt_cost(model: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> float:
    """What the prompt of a call will cost, known before the call (0 when there is no price)."""
    if model.startswith(f"{SCRIPTED}/"):
        return _scripted_prompt_tokens(messages) * Script.load(model.split("/", 1)[1]).price["input"] / 1e6
    try:
        tokens = litellm.token_counter(model=model, messages=messages, tools=tools)
        price = litellm.get_model_info(model).get("input_cost_per_token") or 0.0
    except Exception:  # an unknown model (a local server): no price, no estimate
        return 0.0
    return tokens * price


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
            find_script(model.split("/", 1)[1])
        except FileNotFoundError as error:
            return str(error)
        return None
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


# -- scripted models ----------------------------------------------------------------


def find_script(name: str) -> Path:
    """`scripted/<name>`: a JSON file, found by path, in $AUTOAGENT_SCRIPTS, or bundled."""
    candidates = [Path(name)] if name.endswith(".json") else []
    for directory in filter(None, os.environ.get("AUTOAGENT_SCRIPTS", "").split(os.pathsep)):
        candidates.append(Path(directory) / f"{name}.json")
    candidates.append(BUNDLED_SCRIPTS / f"{name}.json")
    for path in candidates:
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"No script for the model scripted/{name}: looked for "
        + ", ".join(str(p) for p in candidates)
    )


@dataclass
class Script:
    """Conversations chosen by regexes on the first user message (`match`) and the
    system prompt (`system`, optional); turns by position.

    {"conversations": [{"match": "greeting", "system": "verify", "turns": [
        {"content": "...", "reasoning": "...",
         "tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}]},
        {"content": "Done."}]}]}
    The turn replayed is the number of assistant messages already in the
    conversation, so a script needs no state and serves concurrent trials. Token
    counts are estimates, charged at a made-up `price_per_million` (input, output).
    """

    conversations: list[dict[str, Any]] = field(default_factory=list)
    price: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SCRIPTED_PRICE))

    @classmethod
    def load(cls, name: str) -> Script:
        data = json.loads(find_script(name).read_text())
        return cls(data["conversations"], {**DEFAULT_SCRIPTED_PRICE, **data.get("price_per_million", {})})

    def turn(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        first_user = next((_text(m) for m in messages if m.get("role") == "user"), "")
        system = next((_text(m) for m in messages if m.get("role") == "system"), "")
        position = sum(1 for m in messages if m.get("role") == "assistant")
        for conversation in self.conversations:
            if re.search(conversation.get("match", ""), first_user, re.IGNORECASE) and re.search(
                conversation.get("system", ""), system, re.IGNORECASE
            ):
                turns = conversation["turns"]
                return turns[position] if position < len(turns) else {"content": "(the script has ended)"}
        return {"content": "(the script has no conversation for this task)"}


def _text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _scripted_prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(len(_text(m)) for m in messages) // 4 + 1  # about 4 characters a token


def _scripted_cost(response: ModelResponse) -> float:
    """Scripted models charge a made-up price (per million tokens), so budgets can be tested."""
    price = Script.load(response.model.split("/", 1)[1]).price
    usage = response.usage
    return (usage.prompt_tokens * price["input"] + usage.completion_tokens * price["output"]) / 1e6


class ScriptedModel(CustomLLM):
    """LiteLLM provider `scripted`: replays a `Script`; token counts are estimates."""

    async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
        return self.completion(model, messages, *args, **kwargs)

    def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
        turn = Script.load(model).turn(messages)
        calls = [
            ChatCompletionMessageToolCall(
                id=f"call_{uuid.uuid4().hex[:12]}",
                type="function",
                function=Function(name=c["name"], arguments=json.dumps(c.get("arguments", {}))),
            )
            for c in turn.get("tool_calls", [])
        ]
        message = Message(role="assistant", content=turn.get("content", ""), tool_calls=calls or None)
        if turn.get("reasoning"):
            message.reasoning_content = turn["reasoning"]
        prompt = _scripted_prompt_tokens(messages)
        completion = (len(turn.get("content", "")) + len(json.dumps(turn.get("tool_calls", [])))) // 4 + 1
        return ModelResponse(
            model=f"{SCRIPTED}/{model}",
            choices=[{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
            usage=Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion),
        )


if not any(item["provider"] == SCRIPTED for item in litellm.custom_provider_map):
    litellm.custom_provider_map.append({"provider": SCRIPTED, "custom_handler": ScriptedModel()})
