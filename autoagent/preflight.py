"""Before the first trial or proposal: do the configured models answer, and can money be counted?

`check` makes one tiny real call per model and endpoint (the task agent's, the
meta-agent's), so that a missing or wrong key, an unknown model or an endpoint that does
not answer stops a command within seconds, with the setting to fix, instead of failing
every trial of the night. Scripted models need no call. `environment` carries the model
settings of autoagent.toml (prices, the per-call time limit) to every process a command
starts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from autoagent import scripted, spend
from autoagent.config import Config
from autoagent.faults import ModelUnavailableError, configuration_error, is_prompt_fault, rate_limited

PREFLIGHT_TIMEOUT_SEC = 30.0


@dataclass(frozen=True)
class Endpoint:
    role: str  # task or meta
    model: str
    api_base: str | None = None

    @property
    def section(self) -> str:
        return "meta" if self.role == "meta" else "agent"


def environment(config: Config) -> dict[str, str]:
    """Variables for every process a command starts: the configured prices and the task
    agent's per-call time limit (the harness's calls read them in its trial process)."""
    from autoagent import llm

    prices = {m.model: list(m.price) for m in (config.agent, config.meta) if m.model and m.price}
    return {spend.PRICES_ENV: json.dumps(prices), llm.TIMEOUT_ENV: f"{config.agent.timeout_sec:g}"}


async def check(endpoints: list[Endpoint]) -> None:
    """One minimal call per model and endpoint; `ModelConfigurationError` naming the setting
    when one cannot work, `ModelUnavailableError` when its endpoint does not answer."""
    from autoagent import llm

    seen = set()
    for endpoint in endpoints:
        if endpoint.model.startswith(f"{llm.SCRIPTED}/") or (endpoint.model, endpoint.api_base) in seen:
            continue
        seen.add((endpoint.model, endpoint.api_base))
        try:
            await llm.complete(
                endpoint.model, [{"role": "user", "content": "Reply with OK."}], api_base=endpoint.api_base,
                role=endpoint.role, backoff=llm.Backoff(attempts=2, base_sec=1.0, max_sec=2.0),
                timeout=min(PREFLIGHT_TIMEOUT_SEC, llm.call_timeout()), max_tokens=8,
            )  # fmt: skip
        except ModelUnavailableError as error:
            if rate_limited(error):  # the key and the model were accepted: busy is not broken
                continue
            where = f"[{endpoint.section}] api_base" if endpoint.api_base else "the provider's status"
            raise ModelUnavailableError(
                f"Before the first trial, a test call to [{endpoint.section}] model failed: {error}. "
                f"Check {where} and try again."
            ) from error
        except Exception as error:  # a minimal, well-formed request refused: the setting is wrong
            if not is_prompt_fault(error):
                raise
            raise configuration_error(error, endpoint.model, endpoint.api_base,
                                      f"[{endpoint.section}] model") from error  # fmt: skip


def budget_problem(endpoints: list[Endpoint], budget_usd: float | None) -> str | None:
    """A USD budget cannot hold when a model's calls have no price: why, with the fix."""
    from autoagent import llm

    if budget_usd is None:
        return None
    for endpoint in endpoints:
        if not llm.has_price(endpoint.model):
            return (
                f"--budget-usd / [budget] usd {budget_usd:g} cannot be kept: LiteLLM has no price for "
                f"{endpoint.model} ([{endpoint.section}] model), so its calls cost an unknown amount. "
                f"Give its price in autoagent.toml, e.g. [{endpoint.section}] input_usd_per_mtok = 0.5 and "
                f"output_usd_per_mtok = 1.5 (USD per million tokens; 0 for a free local model), or run "
                f"without a USD budget."
            )
    return None


def meta_problem(meta_model: str) -> str | None:
    """A scripted meta model whose script has no conversation for a brief cannot propose
    (the task agent's script, which a meta-agent borrows when [meta] model is unset)."""
    if not meta_model.startswith(f"{scripted.PROVIDER}/"):
        return None
    from autoagent.meta.brief import SYSTEM_PROMPT

    brief = [{"role": "system", "content": SYSTEM_PROMPT},
             {"role": "user", "content": "# Experiment 1: propose one change to agent.py"}]  # fmt: skip
    try:
        if scripted.Script.load(meta_model.split("/", 1)[1]).turn(brief) is not scripted.NO_CONVERSATION:
            return None
    except FileNotFoundError:
        return None  # said by the model check
    return (
        f"The meta-agent's model {meta_model} has no script for proposing (it is the task agent's, or "
        f'its script has no conversation for a brief). Set [meta] model = "{scripted.DEMO_META}" in '
        f"autoagent.toml (the scripted meta-agent of `autoagent demo`), or pass --meta-model "
        f"{scripted.DEMO_META}, or use a real model."
    )
