"""The host's side of one harness box: start it, answer its environment operations
with the task's real environment, and end it (killed as a whole, links it left in
the logs removed, its scratch deleted)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import stat
import tempfile
import uuid
from pathlib import Path
from typing import Any

from harbor.environments.base import BaseEnvironment

from autoagent.harness_box import box, transfer
from autoagent.harness_box.channel import Channel

RUNNER = "autoagent.harness_box.runner"
LOG_NAME = "harness-box.log"


class HarnessBoxExited(RuntimeError):
    """The box's process ended before it answered."""


class Box:
    def __init__(self, process: asyncio.subprocess.Process, channel: Channel, root: Path, log: Path) -> None:
        self.process, self.channel, self.root, self.log = process, channel, root, log
        self.staging = root / "scratch" / "staging"
        self.environment: BaseEnvironment | None = None
        self._serving = asyncio.create_task(channel.serve(self._handle))

    @classmethod
    async def start(cls, *, harness: str, harness_dir: Path, model: str | None, logs_dir: Path) -> Box:
        logs_dir.mkdir(parents=True, exist_ok=True)
        root = Path(tempfile.mkdtemp(prefix="autoagent-box-"))
        scratch = root / "scratch"
        (scratch / "staging").mkdir(parents=True)
        (root / "private").mkdir()
        ours, theirs = socket.socketpair()
        try:
            warm = "1" if model and not model.startswith("scripted/") else "0"  # LiteLLM takes seconds
            argv = box.module_command(RUNNER, harness_dir, harness, scratch, model=model, writable=[logs_dir],
                                      args=[str(theirs.fileno()), str(scratch), warm])  # fmt: skip
            log = logs_dir / LOG_NAME
            with open(log, "ab") as output:
                process = await asyncio.create_subprocess_exec(
                    *argv, pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL,
                    stdout=output, stderr=output,
                )  # fmt: skip
        except BaseException:
            ours.close()
            shutil.rmtree(root, ignore_errors=True)
            raise
        finally:
            theirs.close()
        return cls(process, await Channel.open(ours), root, log)

    async def request(self, op: str, **fields: Any) -> Any:
        try:
            return await self.channel.request(op, **fields)
        except ConnectionError:
            code = await self.process.wait()
            tail = self.log.read_text(errors="replace").strip().splitlines()[-10:]
            raise HarnessBoxExited(
                f"the harness box exited (code {code}) during {op}; the end of {self.log}:\n" + "\n".join(tail)
            ) from None

    async def _handle(self, message: dict[str, Any]) -> Any:
        op, environment = message["op"], self.environment
        if op == "exec":
            result = await environment.exec(
                message["command"], cwd=message.get("cwd"), env=message.get("env"),
                timeout_sec=message.get("timeout_sec"), user=message.get("user"),
            )  # fmt: skip
            return result.model_dump()
        if op in ("upload_file", "upload_dir"):
            with self._private() as place:
                await asyncio.to_thread(transfer.copy_out, self.staging, message["staged"], place / "x")
                await getattr(environment, op)(place / "x", message["target"])
            return None
        if op in ("download_file", "download_dir"):
            with self._private() as place:
                await getattr(environment, op)(message["source"], place / "x")
                name = uuid.uuid4().hex
                os.rename(place, self.staging / name)  # fails, rather than follows, if the box put a link there
            return {"staged": name}
        raise ValueError(f"the harness box asked for an unknown operation {op!r}")

    @contextlib.contextmanager
    def _private(self):
        """A directory of the host's that the box cannot see, removed after use."""
        place = self.root / "private" / uuid.uuid4().hex
        place.mkdir()
        try:
            yield place
        finally:
            shutil.rmtree(place, ignore_errors=True)

    async def close(self, logs_dir: Path) -> None:
        """End the box (every process in it), then make its logs safe to read."""
        self.channel.close()
        if self.process.returncode is None:
            try:
                await asyncio.wait_for(asyncio.shield(self.process.wait()), timeout=2)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    self.process.kill()  # its PID namespace, and every process in it, goes too
                await self.process.wait()
        self._serving.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._serving
        remove_links(logs_dir)
        shutil.rmtree(self.root, ignore_errors=True)

    def kill(self) -> None:
        """On cancellation: stop it now."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def abandon(self) -> None:
        """Its trial is gone without it: stop it and remove its scratch, now."""
        self.kill()
        self.channel.close()
        self._serving.cancel()
        shutil.rmtree(self.root, ignore_errors=True)


def remove_links(directory: Path) -> None:
    """Delete what the box left in `directory` that is not a file or a directory (a
    link to a host file would be followed by whoever reads the trial's logs)."""
    for parent, dirs, files in os.walk(directory):
        for name in dirs + files:
            path = Path(parent) / name
            mode = path.lstat().st_mode
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                path.unlink()
