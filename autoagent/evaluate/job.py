"""Run a Harbor job in a fresh process and follow its trials as they finish."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
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

from autoagent.evaluate.pool import Grant, TrialPool
from autoagent.harness_box import BOXED_AGENT

SANDBOX = "autoagent.sandbox:Sandbox"
BUILTIN_AGENTS = ("oracle", "nop")


class JobFailed(RuntimeError):
    """The Harbor job itself failed (not one of its trials)."""


def unique_job_name(prefix: str) -> str:
    """Harbor resumes a job whose name and config it has seen: never reuse a name."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{prefix}-{stamp}-{uuid.uuid4().hex[:6]}"


def agent_config(agent: str, model: str | None = None, kwargs: dict | None = None) -> AgentConfig:
    """`oracle`, `nop`, any Harbor agent name, or an import path like `agent:AutoAgent`.

    An import path is a harness: it runs in a box of its own (see harness_box), imported
    from the worker's directory. It resolves its model itself (LiteLLM names, scripted/...)."""
    if ":" in agent:
        return AgentConfig(import_path=BOXED_AGENT, model_name=model, skip_model_parsing=True,
                           kwargs={"harness": agent, "harness_kwargs": kwargs or {}})  # fmt: skip
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


class Worker:
    """A worker process for one harness: jobs run in it one after another.

        async with Worker(workspace_root) as worker:
            smoke = await worker.run(smoke_config)
            full = await worker.run(full_config)

    `cwd` is where the agent's module is imported from. Leaving the block early
    (Ctrl-C, an error) asks Harbor to cancel its trials, which stop their sandboxes.
    A job run with a `pool` starts each trial only once the pool grants it a slot; every
    slot the process holds goes back when its trial ends, or when the process dies.
    """

    def __init__(self, cwd: Path | None = None, model: str | None = None) -> None:
        self.cwd = cwd
        self.warm_litellm = bool(model) and not model.startswith("scripted/")
        self.log_path: Path | None = None
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None
        self._on_event: Callable[[dict[str, Any]], None] | None = None
        self._done: asyncio.Future | None = None
        self._pool: TrialPool | None = None
        self._priority = 0
        self._asking: dict[str, asyncio.Task] = {}  # trial -> its wait for a slot
        self._held: dict[str, tuple[TrialPool, Grant]] = {}

    async def __aenter__(self) -> Worker:
        return self

    async def start(self, jobs_dir: Path) -> None:
        """Start the process now (it warms up while nothing is asked of it yet)."""
        if self._process is not None:
            return
        jobs_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = jobs_dir / f"worker-{datetime.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}.log"
        events_read, events_write = os.pipe()
        env = {
            **os.environ,
            "HARBOR_TELEMETRY": "0",
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "AUTOAGENT_EVENTS_FD": str(events_write),
            "AUTOAGENT_WARM_LITELLM": "1" if self.warm_litellm else "0",
        }
        with open(self.log_path, "wb") as log:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "autoagent.evaluate._worker",
                stdin=asyncio.subprocess.PIPE, stdout=log, stderr=log,
                pass_fds=(events_write,), env=env, cwd=self.cwd,
                start_new_session=True,  # Ctrl-C reaches us only; we forward one SIGINT
            )  # fmt: skip
        os.close(events_write)
        self._reader = asyncio.create_task(self._follow(events_read))

    async def run(
        self,
        config: JobConfig,
        on_event: Callable[[dict[str, Any]], None] | None = None,
        env: dict[str, str] | None = None,
        pool: TrialPool | None = None,
        priority: int = 0,
    ) -> Path:
        """Run `config` in the worker (with `env` added to its environment) and wait
        for it; return the job directory. With `pool`, its trials wait for its slots
        (served by `priority`, lower first)."""
        job_dir = Path(config.jobs_dir) / config.job_name
        job_dir.mkdir(parents=True, exist_ok=True)
        await self.start(job_dir.parent)
        config_path = job_dir.parent / f"{config.job_name}.config.json"
        config_path.write_text(config.model_dump_json(indent=2))
        if self._process.returncode is not None or self._reader.done():  # it died while idle
            raise JobFailed(self._failure(config.job_name, self._exited()))
        self._on_event = on_event
        self._pool, self._priority = pool, priority
        self._done = asyncio.get_running_loop().create_future()
        try:
            request = {"config": str(config_path), "env": env or {}, "gated": pool is not None}
            self._process.stdin.write(json.dumps(request).encode() + b"\n")
            await self._process.stdin.drain()
        except (ConnectionResetError, BrokenPipeError):  # it died just now
            raise JobFailed(self._failure(config.job_name, self._exited())) from None
        done = await self._done
        self._give_back()  # every trial has ended; on a cancel, the process's end gives them back
        if not done.get("ok"):
            raise JobFailed(self._failure(config.job_name, done.get("error")))
        return job_dir

    async def _follow(self, fd: int) -> None:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=2**20)
        transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(fd, "rb")
        )
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:  # a line over the limit: dropped (its tail fails to parse)
                    continue
                if not line:
                    break
                try:
                    event = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if event.get("event") == "job-done":
                    if self._done is not None and not self._done.done():
                        self._done.set_result(event)
                elif event.get("event") == "slot-wanted":
                    self._asking[event["trial"]] = asyncio.create_task(self._grant(event["trial"]))
                elif event.get("event") == "slot-free":
                    self._free(event["trial"])
                elif self._on_event is not None:
                    self._on_event(event)
        finally:
            transport.close()
            self._give_back()
            if self._done is not None and not self._done.done():  # the worker died mid-job
                self._done.set_result({"ok": False, "error": "the worker process exited"})

    async def _grant(self, trial: str) -> None:
        """Wait for a slot of the pool for `trial`, then tell the worker it may start."""
        pool = self._pool
        if pool is not None:  # else a stray ask: let it run
            self._held[trial] = (pool, await pool.acquire(self._priority))
        self._asking.pop(trial, None)
        try:
            self._process.stdin.write(json.dumps({"grant": trial}).encode() + b"\n")
        except (ConnectionResetError, BrokenPipeError, AttributeError, RuntimeError):
            self._free(trial)  # the worker is gone (or closing): its slot too

    def _free(self, trial: str) -> None:
        asking = self._asking.pop(trial, None)
        if asking is not None:
            asking.cancel()
        held = self._held.pop(trial, None)
        if held is not None:
            pool, grant = held
            pool.release(grant)

    def _give_back(self) -> None:
        """Every slot this process holds or waits for goes back to the pool."""
        for trial in list(self._asking) + list(self._held):
            self._free(trial)

    def _exited(self) -> str:
        code = self._process.returncode if self._process else None
        if code is None:
            how = ""
        else:
            how = f" with signal {-code}" if code < 0 else f" with exit code {code}"
        return f"the worker process exited{how} before the job could start"

    def _failure(self, job_name: str, error: str | None) -> str:
        if error and re.match(r"[\w.]+(Error|Exception)\b", error):
            # the exception's own line says what is wrong; its traceback stays in the log
            return f"Harbor job {job_name} failed: {error}. The worker's log: {self.log_path}"
        tail = self.log_path.read_text(errors="replace").strip().splitlines()[-15:] if self.log_path else []
        return (
            f"Harbor job {job_name} failed: {error or 'no detail'}. "
            f"Last lines of {self.log_path}:\n" + "\n".join(tail)
        )

    async def __aexit__(self, kind, error, trace) -> None:
        process = self._process
        if process is None:
            return
        process.stdin.close()  # no more jobs: the worker leaves when the last one is done
        if error is None:
            await process.wait()
        else:
            await _interrupt(process)
        if self._reader is not None:
            await self._reader


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
