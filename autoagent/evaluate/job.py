"""Run a Harbor job in a fresh process and follow its trials as they finish."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from harbor.models.environment_type import EnvironmentType
from harbor.models.job.config import JobConfig, RetryConfig
from harbor.models.trial.config import AgentConfig, EnvironmentConfig, TaskConfig

SANDBOX = "autoagent.sandbox:Sandbox"
BUILTIN_AGENTS = ("oracle", "nop")


class JobFailed(RuntimeError):
    """The Harbor job itself failed (not one of its trials)."""


def unique_job_name(prefix: str) -> str:
    """Harbor resumes a job whose name and config it has seen: never reuse a name."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:6]}"


def agent_config(agent: str, model: str | None = None, kwargs: dict | None = None) -> AgentConfig:
    """`oracle`, `nop`, any Harbor agent name, or an import path like `agent:AutoAgent`."""
    if ":" in agent:
        return AgentConfig(import_path=agent, model_name=model, kwargs=kwargs or {})
    return AgentConfig(name=agent, model_name=model, kwargs=kwargs or {})


def environment_config(environment: str, kwargs: dict | None = None) -> EnvironmentConfig:
    """`sandbox` (ours), any Harbor environment type, or an import path."""
    if environment == "sandbox":
        return EnvironmentConfig(import_path=SANDBOX, kwargs=kwargs or {})
    if ":" in environment:
        return EnvironmentConfig(import_path=environment, kwargs=kwargs or {})
    try:
        return EnvironmentConfig(type=EnvironmentType(environment), kwargs=kwargs or {})
    except ValueError:
        known = ", ".join(sorted(t.value for t in EnvironmentType))
        raise ValueError(
            f"Unknown environment {environment!r}: use `sandbox`, one of Harbor's "
            f"({known}), or an import path such as `package.module:Class`."
        ) from None


def job_config(
    *,
    task_paths: list[Path],
    agent: AgentConfig,
    environment: EnvironmentConfig,
    jobs_dir: Path,
    job_name: str,
    n_concurrent: int,
    n_attempts: int,
) -> JobConfig:
    return JobConfig(
        job_name=job_name,
        jobs_dir=jobs_dir.absolute(),
        n_attempts=n_attempts,
        n_concurrent_trials=n_concurrent,
        quiet=True,
        retry=RetryConfig(max_retries=0),  # retries are ours, so failed trials stay on disk
        environment=environment,
        agents=[agent],
        tasks=[TaskConfig(path=path) for path in task_paths],
    )


async def run_job(
    config: JobConfig,
    on_event: Callable[[dict[str, Any]], None] | None = None,
    cwd: Path | None = None,
) -> Path:
    """Run `config` in a new Python process (in `cwd`, where an agent module is
    imported from); return the job directory."""
    job_dir = Path(config.jobs_dir) / config.job_name
    job_dir.mkdir(parents=True, exist_ok=True)
    config_path = job_dir.parent / f"{config.job_name}.config.json"
    config_path.write_text(config.model_dump_json(indent=2))
    log_path = job_dir.parent / f"{config.job_name}.worker.log"
    events_read, events_write = os.pipe()
    env = {
        **os.environ,
        "HARBOR_TELEMETRY": "0",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "AUTOAGENT_EVENTS_FD": str(events_write),
    }
    with open(log_path, "wb") as log:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "autoagent.evaluate._worker", str(config_path),
            stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log,
            pass_fds=(events_write,), env=env, cwd=cwd,
            start_new_session=True,  # Ctrl-C reaches us only; we forward one SIGINT
        )  # fmt: skip
    os.close(events_write)
    try:
        await _follow(events_read, on_event)
        code = await process.wait()
    except BaseException:
        await _interrupt(process)
        raise
    if code != 0:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
        raise JobFailed(
            f"Harbor job {config.job_name} failed (exit {code}). Last lines of {log_path}:\n"
            + "\n".join(tail)
        )
    return job_dir


async def _follow(fd: int, on_event: Callable[[dict[str, Any]], None] | None) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=2**20)
    transport, _ = await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb")
    )
    try:
        while line := await reader.readline():
            if on_event is not None:
                with contextlib.suppress(json.JSONDecodeError):
                    on_event(json.loads(line))
    finally:
        transport.close()


async def _interrupt(process: asyncio.subprocess.Process) -> None:
    """Ask Harbor to cancel its trials (they stop their sandboxes), then insist."""
    if process.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGINT)
    try:
        await asyncio.wait_for(asyncio.shield(process.wait()), timeout=60)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
