"""`scripted/<name>` models: replay a scripted conversation, so everything runs offline.

A script is a JSON file (found by path, in $AUTOAGENT_SCRIPTS, or bundled in
autoagent/examples/scripts). The unchanged harness and meta-agent run against it:
`llm.complete` answers from it directly (no LiteLLM import, so offline runs start
fast), and it is also a LiteLLM provider, for a harness that calls LiteLLM itself.
A turn may take time (`delay_sec`), so that a benchmark's trials and proposals cost
wall time as a real model's do, without costing CPU.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PROVIDER = "scripted"
DEMO_META = f"{PROVIDER}/demo-meta"  # the bundled scripted meta-agent (`autoagent demo`'s)
BUNDLED_SCRIPTS = Path(__file__).parent / "examples" / "scripts"
NO_CONVERSATION = {"content": "(the script has no conversation for this task)"}
DEFAULT_PRICE = {"input": 1.0, "output": 5.0}  # USD per million tokens, made up


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

    {"delay_sec": 2, "conversations": [{"match": "greeting", "system": "verify", "turns": [
        {"content": "...", "reasoning": "...",
         "tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}]},
        {"content": "Done.", "delay_sec": 0.5}]}]}
    The turn replayed is the number of assistant messages already in the
    conversation, so a script needs no state and serves concurrent trials. Token
    counts are estimates, charged at a made-up `price_per_million` (input, output).
    Each turn takes `delay_sec` seconds (its own, else the script's, else none): the
    caller sleeps that long before the answer comes, as it would wait for a model.
    """

    conversations: list[dict[str, Any]] = field(default_factory=list)
    price: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_PRICE))
    delay_sec: float = 0.0

    @classmethod
    def load(cls, name: str) -> Script:
        data = json.loads(find_script(name).read_text())
        price = {**DEFAULT_PRICE, **data.get("price_per_million", {})}
        return cls(data["conversations"], price, float(data.get("delay_sec", 0.0)))

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
        return NO_CONVERSATION


def _text(message: dict[str, Any]) -> str:
    content = message.get("content") or ""
    if isinstance(content, list):
        return " ".join(part.get("text", "") for part in content if isinstance(part, dict))
    return str(content)


def _prompt_tokens(messages: list[dict[str, Any]]) -> int:
    return sum(len(_text(m)) for m in messages) // 4 + 1  # about 4 characters a token


def answer(model: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    """The scripted model's next turn: content, reasoning, tool calls, token counts, cost,
    and the seconds it takes (`delay_sec`), which the caller waits (see `wait`, `await_turn`)."""
    name = model.split("/", 1)[1] if model.startswith(f"{PROVIDER}/") else model
    script = Script.load(name)
    turn = script.turn(messages)
    calls = [
        {"id": f"call_{uuid.uuid4().hex[:12]}", "name": c["name"], "arguments": c.get("arguments", {})}
        for c in turn.get("tool_calls", [])
    ]
    prompt = _prompt_tokens(messages)
    completion = (len(turn.get("content", "")) + len(json.dumps(turn.get("tool_calls", [])))) // 4 + 1
    return {
        "content": turn.get("content", ""),
        "reasoning": turn.get("reasoning"),
        "tool_calls": calls,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "cost_usd": (prompt * script.price["input"] + completion * script.price["output"]) / 1e6,
        "delay_sec": float(turn.get("delay_sec", script.delay_sec)),
    }


async def await_turn(turn: dict[str, Any]) -> None:
    """Wait as long as the turn takes, without holding up the caller's other tasks."""
    if turn["delay_sec"] > 0:
        await asyncio.sleep(turn["delay_sec"])


def wait(turn: dict[str, Any]) -> None:
    """`await_turn` for a caller that is not async (LiteLLM's `completion`)."""
    if turn["delay_sec"] > 0:
        time.sleep(turn["delay_sec"])


def prompt_cost(model: str, messages: list[dict[str, Any]]) -> float:
    return _prompt_tokens(messages) * Script.load(model.split("/", 1)[1]).price["input"] / 1e6


def cost(response: Any) -> float:
    """What a scripted LiteLLM response cost at the script's made-up price."""
    price = Script.load(response.model.split("/", 1)[1]).price
    usage = response.usage
    return (usage.prompt_tokens * price["input"] + usage.completion_tokens * price["output"]) / 1e6


def register(litellm: Any) -> None:
    """Make `scripted/<name>` a LiteLLM provider (called when LiteLLM is first imported)."""
    if any(item["provider"] == PROVIDER for item in litellm.custom_provider_map):
        return
    from litellm import CustomLLM
    from litellm.types.utils import ChatCompletionMessageToolCall, Function, Message, ModelResponse, Usage

    class ScriptedModel(CustomLLM):
        """LiteLLM provider `scripted`: replays a `Script`; token counts are estimates."""

        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
            turn = answer(model, messages)
            await await_turn(turn)
            return self._response(model, turn)

        def completion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> ModelResponse:
            turn = answer(model, messages)
            wait(turn)
            return self._response(model, turn)

        def _response(self, model: str, turn: dict[str, Any]) -> ModelResponse:
            calls = [
                ChatCompletionMessageToolCall(
                    id=c["id"], type="function",
                    function=Function(name=c["name"], arguments=json.dumps(c["arguments"])),
                )  # fmt: skip
                for c in turn["tool_calls"]
            ]
            message = Message(role="assistant", content=turn["content"], tool_calls=calls or None)
            if turn["reasoning"]:
                message.reasoning_content = turn["reasoning"]
            prompt, completion = turn["prompt_tokens"], turn["completion_tokens"]
            return ModelResponse(
                model=f"{PROVIDER}/{model}",
                choices=[{"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}],
                usage=Usage(prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion),
            )

    litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": ScriptedModel()})
