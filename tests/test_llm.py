import asyncio
import json
import time

import litellm
import pytest

from autoagent import llm
from autoagent.faults import ModelUnavailableError
from tests.fake_openai import FakeOpenAI

FAST = llm.Backoff(attempts=4, base_sec=0.01, max_sec=0.05)


async def test_rate_limits_are_retried_and_usage_recorded(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    answers = [429, 429, {"content": "hi", "tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}]}]
    with FakeOpenAI(answers) as server:
        reply = await llm.complete(
            "openai/fake-model", [{"role": "user", "content": "go"}], api_base=server.url, backoff=FAST
        )
    assert len(server.requests) == 3
    assert reply.retries == 2
    assert (reply.input_tokens, reply.output_tokens) == (100, 20)
    assert reply.tool_calls[0].name == "bash" and reply.tool_calls[0].arguments == {"command": "ls"}
    assert reply.cost_usd is None  # no price for this model: unknown, not a crash
    assert json.loads(reply.message["tool_calls"][0]["function"]["arguments"]) == {"command": "ls"}


async def test_retries_give_up_after_the_last_attempt(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")
    with FakeOpenAI([429] * 10) as server:
        with pytest.raises(ModelUnavailableError, match="unavailable after 4 attempts: RateLimitError"):
            await llm.complete("openai/fake-model", [{"role": "user", "content": "go"}],
                               api_base=server.url, backoff=FAST)  # fmt: skip
    assert len(server.requests) == FAST.attempts


async def test_a_known_model_has_a_price():
    response = litellm.ModelResponse(
        model="gpt-4o", choices=[{"message": {"role": "assistant", "content": "x"}}],
        usage={"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100},
    )  # fmt: skip
    assert llm.cost_of(response) > 0


async def test_scripted_model_picks_the_conversation_and_turn(tmp_path, monkeypatch):
    (tmp_path / "two.json").write_text(json.dumps({"conversations": [
        {"match": "apples", "turns": [{"content": "first apple"}, {"content": "second apple"}]},
        {"match": "pears", "turns": [{"reasoning": "think", "tool_calls": [{"name": "bash", "arguments": {"command": "pwd"}}]}]},
    ]}))  # fmt: skip
    monkeypatch.setenv("AUTOAGENT_SCRIPTS", str(tmp_path))
    apples = [{"role": "system", "content": "s"}, {"role": "user", "content": "About apples"}]
    assert (await llm.complete("scripted/two", apples)).content == "first apple"
    apples.append({"role": "assistant", "content": "first apple"})
    assert (await llm.complete("scripted/two", apples)).content == "second apple"
    pears = await llm.complete("scripted/two", [{"role": "user", "content": "pears!"}])
    assert pears.reasoning == "think" and pears.tool_calls[0].arguments == {"command": "pwd"}
    assert pears.input_tokens > 0 and pears.cost_usd > 0  # scripted models charge a made-up price
    other = await llm.complete("scripted/two", [{"role": "user", "content": "plums"}])
    assert "no conversation" in other.content and not other.tool_calls


def test_model_problems_are_explained():
    assert llm.model_problem("anthropic/claude-sonnet-4-5") is None
    assert llm.model_problem("openai/my-local-model", "http://localhost:8000/v1") is None
    assert "does not know the model 'frobnicator-9'" in llm.model_problem("frobnicator-9")
    assert "does not know" in llm.model_problem("nosuchprovider/x")
    assert "No script for the model scripted/missing" in llm.model_problem("scripted/missing")


async def test_scripted_models_are_also_a_litellm_provider(tmp_path, monkeypatch):
    """A harness may call LiteLLM itself; the scripted model answers there too."""
    (tmp_path / "one.json").write_text(json.dumps({"conversations": [
        {"match": ".", "turns": [{"content": "hi", "tool_calls": [{"name": "bash", "arguments": {"command": "ls"}}]}]}]}))
    monkeypatch.setenv("AUTOAGENT_SCRIPTS", str(tmp_path))
    llm._litellm()  # registers the provider
    response = await litellm.acompletion(model="scripted/one", messages=[{"role": "user", "content": "x"}])
    assert response.choices[0].message.content == "hi"
    assert json.loads(response.choices[0].message.tool_calls[0].function.arguments) == {"command": "ls"}
    assert llm.cost_of(response) > 0


async def test_scripted_turns_take_their_delay_without_blocking(tmp_path, monkeypatch):
    """A benchmark's scripted model costs wall time per turn (the script's delay, or the
    turn's own), as a real one does; concurrent callers wait side by side, not in turn."""
    (tmp_path / "slow.json").write_text(json.dumps({"delay_sec": 0.4, "conversations": [
        {"match": "quick", "turns": [{"content": "at once", "delay_sec": 0}]},
        {"match": ".", "turns": [{"content": "after a while"}]}]}))  # fmt: skip
    monkeypatch.setenv("AUTOAGENT_SCRIPTS", str(tmp_path))
    slow = [{"role": "user", "content": "go"}]
    started = time.monotonic()
    replies = await asyncio.gather(*(llm.complete("scripted/slow", slow) for _ in range(4)))
    took = time.monotonic() - started
    assert [r.content for r in replies] == ["after a while"] * 4
    assert 0.4 <= took < 1.2  # four turns of 0.4 s at once, not one after another
    started = time.monotonic()
    assert (await llm.complete("scripted/slow", [{"role": "user", "content": "quick"}])).content == "at once"
    assert time.monotonic() - started < 0.3
    llm._litellm()  # a harness that calls LiteLLM itself waits as long
    started = time.monotonic()
    response = await litellm.acompletion(model="scripted/slow", messages=slow)
    assert response.choices[0].message.content == "after a while" and time.monotonic() - started >= 0.4
    started = time.monotonic()
    assert litellm.completion(model="scripted/slow", messages=slow).choices[0].message.content == "after a while"
    assert time.monotonic() - started >= 0.4
