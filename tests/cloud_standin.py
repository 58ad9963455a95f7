"""A cloud provider, stood in for by autoagent's sandbox: many trials at once, offline.

    environment = "tests.cloud_standin:CloudStandin"
    environment_kwargs = {"ledger_dir": "...", "start_latency_sec": 0.2, "fail_every": 7,
                          "max_starts": 4, "per_sec": 1.0}

What a provider does that the local sandbox does not: a sandbox takes a while to be
created (`start_latency_sec`), some creations fail (every `fail_every`-th start, counted
across every process: deterministic), and an account that asks for more than `max_starts`
sandboxes within `per_sec` seconds is refused with a 429 (`TooManyRequestsError`).
Every worker process of a run shares one small file in `ledger_dir`, locked with flock,
so the rate is the whole run's, as a provider sees it. `ledger(ledger_dir)` reads it back.
"""

from __future__ import annotations

import asyncio
import fcntl
import json
import time
from pathlib import Path

from autoagent.sandbox.environment import Sandbox, SandboxOptions

LEDGER = "cloud-standin.json"


class TooManyRequestsError(RuntimeError):
    """The provider's 429: sandboxes were asked for faster than the account may."""


class SandboxCreationError(RuntimeError):
    """The provider could not create the sandbox this time."""


class CloudStandinOptions(SandboxOptions):
    ledger_dir: Path
    start_latency_sec: float = 0.0
    fail_every: int = 0  # 0: no start fails
    max_starts: int = 0  # within per_sec seconds; 0: no limit
    per_sec: float = 1.0


class CloudStandin(Sandbox):
    options_model = CloudStandinOptions
    options: CloudStandinOptions

    @staticmethod
    def type() -> str:
        return "cloud-standin"

    async def start(self, force_build: bool) -> None:
        await asyncio.to_thread(admit, self.options)  # the provider decides first...
        await asyncio.sleep(self.options.start_latency_sec)  # ...then takes its time
        await super().start(force_build)


def admit(options: CloudStandinOptions) -> None:
    """Count this creation request in the shared ledger; refuse or fail it as a provider would."""
    options.ledger_dir.mkdir(parents=True, exist_ok=True)
    with open(options.ledger_dir / LEDGER, "a+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0)
        state = json.loads(file.read() or "{}")
        now = time.time()
        recent = [t for t in state.get("recent", []) if now - t < options.per_sec]
        error: Exception | None = None
        if options.max_starts and len(recent) >= options.max_starts:
            state["throttled"] = state.get("throttled", 0) + 1
            error = TooManyRequestsError(
                f"429 Too Many Requests: more than {options.max_starts} sandboxes within {options.per_sec:g} s"
            )
        else:
            recent.append(now)
            state["starts"] = state.get("starts", 0) + 1
            if options.fail_every and state["starts"] % options.fail_every == 0:
                state["failed"] = state.get("failed", 0) + 1
                error = SandboxCreationError(f"sandbox creation failed (start {state['starts']})")
        state["recent"] = recent
        file.seek(0)
        file.truncate()
        file.write(json.dumps(state))
    if error is not None:
        raise error


def ledger(directory: Path) -> dict[str, int]:
    """How many starts were made, failed, and refused for their rate."""
    path = directory / LEDGER
    state = json.loads(path.read_text()) if path.exists() else {}
    return {key: state.get(key, 0) for key in ("starts", "failed", "throttled")}
