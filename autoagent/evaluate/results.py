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

from autoagent.evaluate import effort
from autoagent.sandbox.environment import DIED_FILE, WARNINGS_FILE

# Failures of the machinery around the agent: retried, and counted apart.
INFRA = {
    "EnvironmentStartTimeoutError", "SandboxBuildFailedError", "AgentSetupTimeoutError",
    "HealthcheckError", "AddTestsDirError", "DownloadVerifierDirError", "JailError",
    "RuntimeRequestError", "SandboxLikelyOutOfMemoryError", "SandboxDiedError", "HarnessBoxUnavailableError",
    # the model provider: rate limits, outages, dropped connections
    "RateLimitError", "APIConnectionError", "InternalServerError", "ServiceUnavailableError",
    "Timeout", "APIError", "ApiError", "ApiRateLimitError", "ApiInternalServerError",
    "ApiOverloadedError", "ApiConnectionError", "ApiConnectionClosedError",
    "NetworkConnectionError", "UnknownApiError",
    "ModelUnavailableError",  # autoagent.faults: a provider still failing after its retries
}  # fmt: skip
# A model that cannot work as configured (no key, unknown model): the run stops, nothing is judged.
CONFIGURATION = "ModelConfigurationError"
# The task cannot run on this host as written: retrying will not help.
ENVIRONMENT = {"SandboxUnavailableError", "BuildError", "UnsupportedDockerfile", "ServiceError"}
VERIFIER = {
    "InvalidReward", "RewardFileNotFoundError", "RewardFileEmptyError", "VerifierOutputParseError",
    "VerifierTimeoutError",
}  # fmt: skip
MAX_REWARD_FILE = 64 * 2**10  # a reward file beyond this is the verifier's error, not a score
MAX_REWARD_KEYS = 100
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
    if exception_type == CONFIGURATION:
        return "configuration"
    return "agent"


def _category(exception_type: str | None, result: dict) -> str | None:
    """`category`, except that an error no rule names, raised before the agent was set up,
    is the infrastructure's: the environment never came up (a cloud provider refusing to
    create a sandbox, its 429 when creations are throttled), the harness had no part in it."""
    named = category(exception_type)
    if named == "agent" and result.get("environment_setup") and not result.get("agent_setup"):
        return "infra"
    return named


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
    turns: int | None = None  # model turns: agent steps of the trajectory
    cached_tokens: int | None = None  # of the input tokens, read from a cache
    agent_seconds: float | None = None  # the agent's own wall time (not the sandbox's start)

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
    task = Path(task_path).name
    if (trial_dir / DIED_FILE).exists():  # whatever broke after, the sandbox died first
        message = (trial_dir / DIED_FILE).read_text(errors="replace").strip()
        info = {"exception_type": "SandboxDiedError", "exception_message": message}
        error_type = "SandboxDiedError"
    counts = not error_type or policy_for(error_type).has_valid_reward
    bad_reward = _reward_problem(task, trial_dir, rewards) if counts else None
    if bad_reward:  # the verifier's error: this trial's, named, never a score
        info = {"exception_type": "InvalidReward", "exception_message": bad_reward}
        error_type, rewards = "InvalidReward", {}
    reward = _reward(rewards)
    if error_type and not policy_for(error_type).has_valid_reward:
        reward = 0.0
    agent = data.get("agent_result") or {}
    trial = Trial(
        task=task,
        trial_name=data["trial_name"],
        trial_dir=str(trial_dir),
        reward=reward,
        error=_error_text(info) if info else None,
        category=_category(error_type, data),
        # from the environment's start: a trial that waited for a slot of the pool did not run meanwhile
        seconds=_seconds((data.get("environment_setup") or {}).get("started_at") or data.get("started_at"),
                         data.get("finished_at")),
        input_tokens=agent.get("n_input_tokens"),
        output_tokens=agent.get("n_output_tokens"),
        cost_usd=agent.get("cost_usd"),
        turns=effort.turns(trial_dir),
        cached_tokens=agent.get("n_cache_tokens"),
        agent_seconds=_seconds(*[(data.get("agent_execution") or {}).get(k) for k in ("started_at", "finished_at")]),
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


def _reward_problem(task: str, trial_dir: Path, rewards: dict) -> str | None:
    """Why the verifier's rewards cannot be a score (too big, out of [0, 1]); None if they can."""
    for name in ("reward.json", "reward.txt"):
        file = trial_dir / "verifier" / name
        if file.exists() and file.stat().st_size > MAX_REWARD_FILE:
            return (f"task {task}: its verifier wrote a {file.stat().st_size / 2**10:.0f} KiB {name} "
                    f"(at most {MAX_REWARD_FILE // 2**10} KiB is read as a reward); see {file}")  # fmt: skip
    if len(rewards) > MAX_REWARD_KEYS:
        return f"task {task}: its verifier wrote {len(rewards)} rewards (at most {MAX_REWARD_KEYS})"
    for key, value in rewards.items():
        if not 0.0 <= float(value) <= 1.0:
            return f"task {task}: its verifier's reward {key} = {value:g} is outside [0, 1]"
    return None


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
