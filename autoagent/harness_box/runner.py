"""`python -m autoagent.harness_box.runner FD SCRATCH`: the box's side of a trial.

It imports the harness, builds its agent as Harbor would, and runs its `setup()` and
`run()` against a stand-in environment whose exec, uploads and downloads go over the
socket FD to the process that runs the trial. Files travel through SCRATCH/staging.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import shutil
import socket
import sys
import traceback
import uuid
from pathlib import Path, PurePosixPath
from typing import Any
from uuid import UUID

from harbor.agents.base import BaseAgent  # noqa: F401  (every harness needs it: loaded while the trial starts)
from harbor.environments.base import BaseEnvironment, ExecResult
from harbor.models.agent.context import AgentContext

from autoagent import llm
from autoagent.harness_box.channel import Channel, RemoteError


class ProxyEnvironment(BaseEnvironment):
    """The task's environment, as the harness sees it from its box."""

    def __init__(self, channel: Channel, staging: Path) -> None:  # not BaseEnvironment's: no task here
        self._channel, self._staging = channel, staging
        self.default_user = None
        self._persistent_env: dict[str, str] = {}
        self.logger = logging.getLogger("autoagent.harness_box")

    @staticmethod
    def type() -> str:
        return "harness-box"

    def _validate_definition(self) -> None:
        pass

    async def start(self, force_build: bool) -> None:
        raise RuntimeError("the harness cannot start the task's environment")

    async def stop(self, delete: bool) -> None:
        raise RuntimeError("the harness cannot stop the task's environment")

    async def exec(self, command: str, cwd: str | None = None, env: dict[str, str] | None = None,
                   timeout_sec: int | None = None, user: str | int | None = None) -> ExecResult:  # fmt: skip
        result = await self._channel.request(
            "exec", command=command, cwd=cwd, env=env, timeout_sec=timeout_sec, user=user
        )
        return ExecResult(**result)

    async def upload_file(self, source_path: Path | str, target_path: str) -> None:
        await self._upload("upload_file", shutil.copyfile, source_path, target_path)

    async def upload_dir(self, source_dir: Path | str, target_dir: str) -> None:
        await self._upload("upload_dir", shutil.copytree, source_dir, target_dir)

    async def download_file(self, source_path: str, target_path: Path | str) -> None:
        await self._download("download_file", source_path, target_path)

    async def download_dir(self, source_dir: str, target_dir: Path | str) -> None:
        await self._download("download_dir", source_dir, target_dir)

    async def _upload(self, op: str, copy, source: Path | str, target: str) -> None:
        name = uuid.uuid4().hex
        staged = self._staging / name
        try:
            await asyncio.to_thread(copy, source, staged)
            await self._channel.request(op, staged=name, target=target)
        finally:
            await asyncio.to_thread(_remove, staged)

    async def _download(self, op: str, source: str, target: Path | str) -> None:
        reply = await self._channel.request(op, source=source)
        staged = self._staging / reply["staged"]
        try:
            target = Path(target)
            target.parent.mkdir(parents=True, exist_ok=True)
            if op == "download_dir" and target.is_dir():
                await asyncio.to_thread(shutil.copytree, staged / "x", target, dirs_exist_ok=True)
            else:
                await asyncio.to_thread(shutil.move, staged / "x", target)
        finally:
            await asyncio.to_thread(_remove, staged)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class Runner:
    def __init__(self, channel: Channel, scratch: Path) -> None:
        self.environment = ProxyEnvironment(channel, scratch / "staging")
        self.agent = None
        self._run: asyncio.Task | None = None

    async def handle(self, message: dict[str, Any]) -> Any:
        op = message["op"]
        if op == "start":
            return self.start(message)
        if op == "setup":
            await self.agent.setup(self.environment)
            return None
        if op == "cancel":  # the trial timed out: let the harness unwind
            if self._run is not None:
                self._run.cancel()
                await asyncio.wait([self._run])
            return None
        if op == "run":
            context = AgentContext()
            self._run = asyncio.create_task(self.agent.run(message["instruction"], self.environment, context))
            try:
                await self._run
            except Exception as error:  # told to the trial, with what the context holds so far
                raise RemoteError(type(error).__name__, str(error), {
                    "context": context.model_dump(mode="json"),
                    "traceback": "".join(traceback.format_exception(error)[-8:]),
                }) from error  # fmt: skip
            return {"context": context.model_dump(mode="json")}
        raise ValueError(f"unknown request {op!r}")

    def start(self, message: dict[str, Any]) -> dict[str, Any]:
        """Import the harness and build its agent as Harbor's AgentFactory would."""
        module_name, _, class_name = message["harness"].partition(":")
        agent_class = getattr(importlib.import_module(module_name), class_name)
        self.agent = agent_class(
            logs_dir=Path(message["logs_dir"]), model_name=message["model_name"],
            environment_logs_dir=PurePosixPath(message["environment_logs_dir"]),
            skip_model_parsing=message["skip_model_parsing"], **message["kwargs"],
        )  # fmt: skip
        self.agent.session_id = message["session_id"]
        self.agent.context_id = UUID(message["context_id"]) if message["context_id"] else None
        return self.agent.to_agent_info().model_dump(mode="json")


async def main(fd: int, scratch: Path, warm_litellm: bool) -> None:
    sys.path.insert(0, "")  # the harness's directory, as Harbor imports it
    if warm_litellm:  # while the trial starts the task's environment
        llm._litellm()
    channel = await Channel.open(socket.socket(fileno=fd))
    await channel.serve(Runner(channel, scratch).handle)


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "1"))
