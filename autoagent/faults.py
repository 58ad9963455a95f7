"""Fault classes of a model call, decided here and nowhere else.

Two kinds of provider fault leave `llm.complete`:

- `ModelConfigurationError`: permanent (no credentials, a wrong key, no permission, a bad
  request, an unknown model). Retrying cannot help;
  the message says which setting or environment variable to fix, and a run stops on it.
- `ModelUnavailableError`: transient (rate limits, 5xx, a dropped connection, a timeout,
  an empty or malformed reply) that persisted after retries with backoff. It is the
  infrastructure's fault, never the harness's.

A third kind is neither: a request the provider refuses for what it is (over the context
window, against a content policy, malformed: a 400 or 422). That is the caller's own doing (a harness that lets its
history grow, a proposal that sends too much), not a setting and not an outage, so it
leaves `llm.complete` as LiteLLM raised it: the trial fails as the agent's failure, the
proposal as a failed proposal, and the run goes on.

This module does not import LiteLLM at import time (status and config reading stay fast).
"""

from __future__ import annotations

import functools
import re


class ModelConfigurationError(RuntimeError):
    """A model call that cannot succeed until a setting is fixed; the message names it."""


class ModelUnavailableError(RuntimeError):
    """A provider fault that persisted after retries with backoff: infrastructure, not the harness."""


class MalformedReplyError(Exception):
    """A reply with no usable choice (e.g. empty `choices`): retried as transient."""


# LiteLLM wraps some client-side faults in a transient class: they are permanent.
_MISSING_KEY = re.compile(r"missing credentials|api[_ ]?key.*(not set|must be set|missing)|no api key", re.I)


@functools.cache
def _classes() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    import litellm

    permanent = (
        litellm.AuthenticationError,  # 401
        litellm.PermissionDeniedError,  # 403
        litellm.NotFoundError,  # 404: no such model (or no such path at api_base)
        litellm.BadRequestError,  # 400 (but see is_prompt_fault)
        litellm.UnprocessableEntityError,  # 422
    )
    transient = (
        litellm.RateLimitError,  # 429
        litellm.APIConnectionError,
        litellm.InternalServerError,
        litellm.ServiceUnavailableError,
        litellm.BadGatewayError,
        litellm.Timeout,
        litellm.APIError,  # another 5xx
        MalformedReplyError,
        TimeoutError,  # our own deadline around a call
    )
    return permanent, transient


PERMANENT_STATUS = {401, 402, 403, 404, 405}  # LiteLLM maps some of them to APIError
REQUEST_STATUS = {400, 413, 422}  # the request's own fault (see is_prompt_fault)


def is_transient(error: BaseException) -> bool:
    """Worth another try: the provider is busy, down for a moment, or the reply was garbled."""
    _, transient = _classes()
    return not is_permanent(error) and isinstance(error, transient)


def is_prompt_fault(error: BaseException) -> bool:
    """The request itself is refused (too long, against a policy, malformed: a 400, 413 or
    422): the caller's failure, not a setting. (The pre-flight's request is minimal and well
    formed, so there such a refusal does point at a setting; see preflight.py.)"""
    import litellm

    return isinstance(error, (litellm.ContextWindowExceededError, litellm.ContentPolicyViolationError,
                              litellm.BadRequestError, litellm.UnprocessableEntityError)) or (
        getattr(error, "status_code", None) in REQUEST_STATUS and not _MISSING_KEY.search(str(error)))  # fmt: skip


def is_permanent(error: BaseException) -> bool:
    """A fault that a retry cannot fix: a setting must change."""
    permanent, _ = _classes()
    return not is_prompt_fault(error) and (
        isinstance(error, permanent)
        or getattr(error, "status_code", None) in PERMANENT_STATUS
        or bool(_MISSING_KEY.search(str(error)))
    )


def rate_limited(error: BaseException) -> bool:
    """A `ModelUnavailableError` of rate limits: the key and the model were accepted."""
    import litellm

    return isinstance(error.__cause__, litellm.RateLimitError)


def configuration_error(error: BaseException, model: str, api_base: str | None,
                        setting: str = "model") -> ModelConfigurationError:  # fmt: skip
    """One paragraph: what the provider said, and which setting or variable to fix."""
    import litellm

    said = _first_line(error)
    where = f" at {api_base}" if api_base else ""
    keys = _key_names(model, api_base)
    status = getattr(error, "status_code", None)
    if isinstance(error, (litellm.AuthenticationError, litellm.PermissionDeniedError)) or status in (401, 403) \
            or _MISSING_KEY.search(said):
        fix = (f"Check the key in {' or '.join(keys)}" if keys else "Check the endpoint's key") + (
            f" (or the endpoint in {setting.replace('model', 'api_base')})" if api_base else "")  # fmt: skip
        what = "the provider refused the credentials"
    elif isinstance(error, litellm.NotFoundError) or status == 404:
        what, fix = "the provider has no such model (or no such path)", (
            f"Check the model name in {setting}" + (f" and the endpoint in {setting.replace('model', 'api_base')}"
                                                    if api_base else ""))  # fmt: skip
    else:
        what, fix = "the provider rejected the request", f"Check {setting} and its settings"
    return ModelConfigurationError(  # the fix first: a one-line summary may cut the rest
        f"The model {model}{where}: {what}. {fix}; retrying cannot help. "
        f"The provider said: {type(error).__name__}: {said}"
    )


def missing_key_error(model: str, keys: list[str], setting: str = "model") -> ModelConfigurationError:
    names = " or ".join(keys)
    return ModelConfigurationError(
        f"The model {model} needs an API key and {names} is not set: export {keys[0]}=... before "
        f"running, or choose another model in {setting}. For a local OpenAI-compatible server, "
        f"set api_base next to the model (no key is needed then)."
    )


def unavailable_error(error: BaseException, model: str, api_base: str | None, attempts: int) -> ModelUnavailableError:
    where = f" at {api_base}" if api_base else ""
    return ModelUnavailableError(
        f"The model {model}{where} is unavailable after {attempts} attempt{'s' * (attempts != 1)}: "
        f"{type(error).__name__}: {_first_line(error)}"
    )


def _key_names(model: str, api_base: str | None) -> list[str]:
    import litellm

    try:
        return list(litellm.validate_environment(model, api_base=api_base).get("missing_keys") or []) or [
            _provider_key(model)
        ]
    except Exception:
        return [_provider_key(model)]


def _provider_key(model: str) -> str:
    provider = model.split("/", 1)[0] if "/" in model else "openai"
    return f"{provider.upper().replace('-', '_')}_API_KEY"


def _first_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 400 else text[:400] + "..."
