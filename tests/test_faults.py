"""Provider faults against a fake OpenAI-compatible server: permanent ones stop at once with
the setting to fix, transient ones are retried and then reported as unavailability."""

import json
import time

import pytest

from autoagent import llm
from autoagent.faults import ModelConfigurationError, ModelUnavailableError
from tests.fake_openai import FakeOpenAI

FAST = llm.Backoff(attempts=4, base_sec=0.01, max_sec=0.05)
GO = [{"role": "user", "content": "go"}]


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-fake")


@pytest.mark.parametrize(("answer", "said"), [
    ((401, "Incorrect API key provided"), "Check the key in OPENAI_API_KEY"),
    ((403, "not allowed"), "Check the key in OPENAI_API_KEY"),
    ((404, "The model `fake-model` does not exist"), "Check the model name in [agent] model"),
])  # fmt: skip
async def test_permanent_faults_are_not_retried_and_name_the_setting(key, answer, said):
    with FakeOpenAI([answer] * 4) as server:
        with pytest.raises(ModelConfigurationError) as caught:
            await llm.complete("openai/fake-model", GO, api_base=server.url, backoff=FAST)
    assert len(server.requests) == 1
    assert said in str(caught.value) and "retrying cannot help" in str(caught.value)


async def test_a_prompt_over_the_context_window_is_the_callers_failure_not_a_setting(key):
    """A harness that lets its history grow fails its trial; it must not stop the whole run."""
    import litellm

    too_long = (400, "This model's maximum context length is 8192 tokens. However, your messages resulted in "
                     "9000 tokens.")  # fmt: skip
    with FakeOpenAI([too_long] * 4) as server:
        with pytest.raises(litellm.ContextWindowExceededError):
            await llm.complete("openai/fake-model", GO, api_base=server.url, backoff=FAST)
    assert len(server.requests) == 1  # and not retried


async def test_a_malformed_request_is_the_callers_failure_not_a_setting(key):
    """A harness that sends what the model refuses (max_tokens too high, a broken tool message)
    fails its own trial; it must not stop the run as if the model were misconfigured."""
    import litellm

    with FakeOpenAI([(400, "max_tokens is too large: 999999")] * 4) as server:
        with pytest.raises(litellm.BadRequestError):
            await llm.complete("openai/fake-model", GO, api_base=server.url, backoff=FAST)
    assert len(server.requests) == 1


async def test_the_preflight_reads_a_refused_minimal_request_as_a_setting(key):
    from autoagent import preflight

    with FakeOpenAI([(400, "unknown parameter for this endpoint")] * 4) as server:
        with pytest.raises(ModelConfigurationError, match=r"\[agent\] model"):
            await preflight.check([preflight.Endpoint("task", "openai/fake-model", server.url)])


async def test_a_meta_agent_fault_names_the_meta_setting(key):
    with FakeOpenAI([(404, "no such model")]) as server:
        with pytest.raises(ModelConfigurationError, match=r"\[meta\] model"):
            await llm.complete("openai/fake-model", GO, api_base=server.url, backoff=FAST, role="meta")


async def test_a_missing_key_is_named_before_any_request(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    started = time.monotonic()
    with pytest.raises(ModelConfigurationError, match="ANTHROPIC_API_KEY is not set"):
        await llm.complete("anthropic/claude-sonnet-4-5", GO, backoff=FAST)
    assert time.monotonic() - started < 5


async def test_a_local_server_needs_no_key(monkeypatch):
    """The README's local-server recipe: openai/<name> with api_base and no OPENAI_API_KEY."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with FakeOpenAI([{"content": "hi"}]) as server:
        reply = await llm.complete("openai/local-model", GO, api_base=server.url, backoff=FAST)
    assert reply.content == "hi" and server.keys == [f"Bearer {llm.NO_KEY}"]


async def test_a_rate_limit_then_success_is_retried(key):
    with FakeOpenAI([429, {"content": "hi"}]) as server:
        reply = await llm.complete("openai/fake-model", GO, api_base=server.url, backoff=FAST)
    assert reply.content == "hi" and reply.retries == 1 and len(server.requests) == 2


async def test_a_persisting_outage_is_unavailability_after_bounded_retries(key):
    with FakeOpenAI([500] * 10) as server:
        with pytest.raises(ModelUnavailableError, match=f"{server.url} is unavailable after 4 attempts"):
            await llm.complete("openai/fake-model", GO, api_base=server.url, backoff=FAST)
    assert len(server.requests) == FAST.attempts


async def test_empty_choices_are_retried_as_transient(key):
    empty = {"raw": {"id": "x", "object": "chat.completion", "created": 0, "model": "fake-model", "choices": [],
                     "usage": {"prompt_tokens": 1, "completion_tokens": 0, "total_tokens": 1}}}  # fmt: skip
    with FakeOpenAI([empty, {"content": "hi"}]) as server:
        reply = await llm.complete("openai/fake-model", GO, api_base=server.url, backoff=FAST)
    assert reply.content == "hi" and reply.retries == 1
    with FakeOpenAI([empty] * 4) as server:
        with pytest.raises(ModelUnavailableError, match="no choices"):
            await llm.complete("openai/fake-model", GO, api_base=server.url, backoff=FAST)


async def test_an_endpoint_that_never_answers_times_out_per_call(key, monkeypatch):
    monkeypatch.setenv(llm.TIMEOUT_ENV, "1")
    once = llm.Backoff(attempts=2, base_sec=0.01, max_sec=0.05)
    started = time.monotonic()
    with FakeOpenAI(["hang", "hang"]) as server:
        with pytest.raises(ModelUnavailableError, match="after 2 attempts"):
            await llm.complete("openai/fake-model", GO, api_base=server.url, backoff=once)
    assert time.monotonic() - started < 2 * (1 + 5) + 5  # two calls of a 1 s limit, not LiteLLM's 6,000 s
    assert len(server.requests) == 2


async def test_a_configured_price_makes_the_budget_trigger(key, monkeypatch, tmp_path):
    """A local model without a LiteLLM price, priced in autoagent.toml: its calls cost money,
    and the run's budget refuses the call that would cross it."""
    from autoagent import spend

    monkeypatch.setenv(spend.FILE_ENV, str(tmp_path / "spend.jsonl"))
    monkeypatch.setenv(spend.BUDGET_ENV, "0.0002")
    monkeypatch.setenv(spend.PRICES_ENV, json.dumps({"openai/local-model": [1.0, 2.0]}))
    with FakeOpenAI([{"content": "a"}, {"content": "b"}, {"content": "c"}]) as server:
        reply = await llm.complete("openai/local-model", GO, api_base=server.url, backoff=FAST)
        assert reply.cost_usd == pytest.approx((100 * 1.0 + 20 * 2.0) / 1e6)  # the fake's usage, priced
        await llm.complete("openai/local-model", GO, api_base=server.url, backoff=FAST)
        with pytest.raises(spend.BudgetExceededError):
            await llm.complete("openai/local-model", GO, api_base=server.url, backoff=FAST)
    assert len(server.requests) == 2
