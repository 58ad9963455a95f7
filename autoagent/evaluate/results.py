"""What a finished Harbor job says: one `Trial` per attempt, and the score over them.

Score = sum of rewards / trials attempted. A trial that errored counts 0, unless
Harbor's error policy says its reward is still valid (an agent timeout: the
verifier ran on what the agent left). Harbor's own mean skips errored trials, so a
harness that breaks the verifier would not lower it; ours does.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

from harbor.models.trial.error_policy import policy_for

from autoagent.sandbox.environment import WARNINGS_FILE

# Failures of the machinery around the agent: retried, and counted apart.
INFRA = {
    "EnvironmentStartTimeoutError", "SandboxBuildFailedError", "AgentSetupTimeoutError",
    "HealthcheckError", "AddTestsDirError", "DownloadVerifierDirError", "JailError",
    "RuntimeRequestError", "SandboxLikelyOutOfMemoryError",
    # the model provider: rate limits, outages, dropped connections
    "RateLimitError", "APIConnectionError", "InternalServerError", "ServiceUnavailableError",
    "Timeout", "APIError", "ApiError", "ApiRateLimitError", "ApiInternalServerError",
    "ApiOverloadedError", "ApiConnectionError", "ApiConnectionClosedError",
    "NetworkConnectionError", "UnknownApiError",
}  # fmt: skip
# The task cannot run on this host as written: retrying will not help.
ENVIRONMENT = {"SandboxUnavailableError", "BuildError", "UnsupportedDockerfile"}
VERIFIER = {
    "RewardFileNotFoundError", "RewardFileEmptyError", "VerifierOutputParseError",
    "VerifierTimeoutError",
}  # fmt: skip
HUGE_LOG = 10 * 2**20  # verifier output beyond this is cut to its head and tail
KEEP = 2**20


def category(exception_type: str | None) -> str | None:
    if exception_type is None:
        return None
    if exception_type in INFRA:
        return "infra"
    if exception_type in ENVIRONMENT:
        return "environment"
    if exception_type in VERIFIER:
        return "verifier"
    if exception_type == "CancelledError":
        return "cancelled"
    if exception_type == "BudgetExceededError":
        return "budget"
    return "agent"


@dataclass
class Trial:
    task: str
    trial_name: str
    trial_dir: str
    reward: float  # what counts toward the score: 0 when the error voids the reward
    error: str | None = None  # "ExceptionType: first line of the message"
    category: str | None = None  # infra, environment, verifier, agent, cancelled, task
    seconds: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.reward >= 1.0

    @classmethod
    def from_record(cls, record: dict) -> Trial:
        """A trial from its ledger record (which may carry more fields)."""
        return cls(**{k: v for k, v in record.items() if k in cls.__dataclass_fields__})


def read_trial(trial_dir: Path) -> Trial:
    """One trial's outcome from its `result.json`."""
    data = json.loads((trial_dir / "result.json").read_text())
    task_path = (data.get("task_id") or {}).get("path") or data["task_name"]
    info = data.get("exception_info")
    error_type = info["exception_type"] if info else None
    rewards = (data.get("verifier_result") or {}).get("rewards") or {}
    reward = _reward(rewards)
    if error_type and not policy_for(error_type).has_valid_reward:
        reward = 0.0
    agent = data.get("agent_result") or {}
    trial = Trial(
        task=Path(task_path).name,
        trial_name=data["trial_name"],
        trial_dir=str(trial_dir),
        reward=reward,
        error=_error_text(info) if info else None,
        category=category(error_type),
        seconds=_seconds(data.get("started_at"), data.get("finished_at")),
        input_tokens=agent.get("n_input_tokens"),
        output_tokens=agent.get("n_output_tokens"),
        cost_usd=agent.get("cost_usd"),
    )
    trial.warnings += _environment_warnings(trial_dir) + _shorten_huge_logs(trial_dir)
    return trial


def read_job(job_dir: Path) -> list[Trial]:
    """Every finished trial of a job (a trial without `result.json` never finished)."""
    return [
        read_trial(child)
        for child in sorted(job_dir.iterdir())
        if child.is_dir() and (child / "result.json").exists()
    ]


def _reward(rewards: dict) -> float:
    if not rewards:
        return 0.0
    if "reward" in rewards:
        return float(rewards["reward"])
    return sum(float(v) for v in rewards.values()) / len(rewards)


def _error_text(info: dict) -> str:
    lines = (info.get("exception_message") or "").strip().splitlines()
    first = lines[0][:300] if lines else ""
    return f"{info['exception_type']}: {first}" if first else info["exception_type"]


def _seconds(started: str | None, finished: str | None) -> float | None:
    if not started or not finished:
        return None
    return (datetime.fromisoformat(finished) - datetime.fromisoformat(started)).total_seconds()


def _environment_warnings(trial_dir: Path) -> list[str]:
    """What the sandbox warned about during the trial (e.g. a stand-in for the image)."""
    path = trial_dir / WARNINGS_FILE
    if not path.exists():
        return []
    return list(dict.fromkeys(path.read_text(errors="replace").splitlines()))


def _shorten_huge_logs(trial_dir: Path) -> list[str]:
    """A verifier that prints 100 MB would make every later reader choke: keep head and tail."""
    notes = []
    for log in (trial_dir / "verifier").glob("*.txt"):
        size = log.stat().st_size
        if size <= HUGE_LOG:
            continue
        with open(log, "rb") as file:
            head = file.read(KEEP)
            file.seek(size - KEEP)
            tail = file.read()
        note = f"\n\n[... autoagent cut {size - 2 * KEEP} bytes from the middle of this {size}-byte log ...]\n\n"
        log.write_bytes(head + note.encode() + tail)
        notes.append(
            f"{log.name} was {size / 2**20:.1f} MB; its first and last MB are kept"
        )
    return notes


def to_json(trial: Trial) -> dict:
    return asdict(trial)
