"""When an evaluation measures nothing: most of its trials failed for infrastructure reasons
(the model provider, the environment, a worker killed), or the model is not configured.

A harness judged on such an evaluation would be judged on the outage: the baseline would
become a starting point of zeros, a candidate would be discarded (or kept) by chance.
"""

from __future__ import annotations

import builtins
import json
from pathlib import Path

from autoagent.evaluate.results import Trial

MOSTLY = 0.5  # more than this share of infrastructure errors: not a measurement
MOST_IN_A_ROW = 8  # evaluations in a row that measured nothing (waits of 30 s doubling: ~35 min): stop
CANDIDATE_TRIES = 3  # of one candidate: its harness may be the cause (its own rate-limit storm), set it aside


class ConfigurationFailed(ValueError):
    """A trial's model cannot work as configured (no key, unknown model): nothing can be
    measured until the user fixes it. The message is the trial's, in full."""


def unmeasured(trials: list[Trial]) -> str | None:
    """Why these trials are not a measurement, or None when they are."""
    infra = [t for t in trials if t.category == "infra"]
    if not trials or len(infra) <= MOSTLY * len(trials):
        return None
    return f"{len(infra)} of {len(trials)} trials were infrastructure errors (e.g. {infra[0].error})"


class Unmeasured(Exception):
    """Most trials of an evaluation failed for infrastructure reasons: it measured nothing."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def outage(unmeasured: int) -> str | None:
    """Why the run stops after `unmeasured` evaluations in a row measured nothing; None if it goes on."""
    if unmeasured < MOST_IN_A_ROW:
        return None
    return (f"{unmeasured} evaluations in a row were mostly infrastructure errors (see the log); "
            "the candidate is evaluated again when the run resumes")  # fmt: skip


def harness_failure(trials: list[Trial]) -> str | None:
    """Did the harness itself break (a Python error, no trace), rather than fail the task?"""
    for trial in trials:
        kind = (trial.error or "").split(":")[0]
        if trial.category == "configuration":  # a model of its own choosing that cannot work
            return f"{trial.error} (see {Path(trial.trial_dir) / 'exception.txt'})"
        if trial.category == "agent" and isinstance(getattr(builtins, kind, None), type):
            return f"{trial.error} (see {Path(trial.trial_dir) / 'exception.txt'})"
        if trial.category in (None, "agent") and not (Path(trial.trial_dir) / "agent" / "trajectory.json").exists():
            return f"the harness wrote no trajectory (see {trial.trial_dir})"
    return None


def check_configuration(trials: list[Trial], model: str | None = None) -> None:
    """Raise ConfigurationFailed with the full message of the first misconfigured trial; with
    `model`, only for that model (a candidate that calls another one, without its key, fails
    its own trials: `harness_failure` says so)."""
    for trial in trials:
        named = model is None or f"The model {model} " in (trial.error or "") or f"The model {model}:" in (trial.error or "")
        if trial.category == "configuration" and named:
            problem = _full_message(trial) or trial.error or "the model is not configured"
            raise ConfigurationFailed(f"The model cannot work as configured: {problem}")


def _full_message(trial: Trial) -> str | None:
    try:
        data = json.loads((Path(trial.trial_dir) / "result.json").read_text())
    except (OSError, ValueError):
        return None
    message = ((data.get("exception_info") or {}).get("exception_message") or "").strip()
    return f"task {trial.task}: {message}" if message else None
