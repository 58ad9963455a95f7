"""Can each task run in the chosen environment? Asked before the job starts.

Harbor builds a trial's environment outside the trial's own error handling, so a
task the environment refuses (no Dockerfile and no image, a network policy it
cannot enforce) would abort the whole job and leave the other tasks unreported.
Here the environment is built for each task exactly as a trial builds it, without
starting it; a task it refuses is that task's error, and the others run.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from harbor.environments.factory import EnvironmentFactory
from harbor.models.task.task import Task
from harbor.models.task.verifier_mode import resolve_step_verifier_mode, resolve_task_verifier_mode
from harbor.models.trial.config import AgentConfig, EnvironmentConfig, VerifierConfig
from harbor.models.trial.paths import TrialPaths
from harbor.trial.network_policy import resolve_trial_network_plan

_quiet = logging.getLogger("autoagent.precheck")
_quiet.addHandler(logging.NullHandler())
_quiet.propagate = False


def environment_problem(task_path: Path, environment: EnvironmentConfig, agent: AgentConfig) -> str | None:
    """Why `environment` cannot run the task at `task_path`, in one sentence; None if it can."""
    try:
        task = Task(task_path)
        steps = task.config.steps or [None]
        plans = [
            resolve_trial_network_plan(
                task.config, agent, environment, VerifierConfig(), step,
                verifier_mode=resolve_step_verifier_mode(task.config, step) if step is not None
                else resolve_task_verifier_mode(task.config),
            )  # fmt: skip
            for step in steps
        ]
        with tempfile.TemporaryDirectory(prefix="autoagent-precheck-") as scratch:
            paths = TrialPaths(trial_dir=Path(scratch))
            paths.mkdir()
            EnvironmentFactory.create_environment_from_config(
                config=environment, environment_dir=task.paths.environment_dir,
                environment_name=task.short_name, session_id="precheck", trial_paths=paths,
                task_env_config=task.config.environment, logger=_quiet, mounts=environment.mounts,
                network_policy=plans[0].agent_env_baseline,
                phase_network_policies=[phase for plan in plans for phase in (plan.agent_phase, plan.verifier_phase)],
            )  # fmt: skip
    except Exception as error:  # whatever the environment raises is the reason it refuses
        message = " ".join(str(error).split()) or type(error).__name__
        return f"the {_name(environment)} environment cannot run it: {message}"
    return None


def _name(environment: EnvironmentConfig) -> str:
    if environment.type is not None:
        return environment.type.value
    return "sandbox" if environment.import_path == "autoagent.sandbox:Sandbox" else str(environment.import_path)
