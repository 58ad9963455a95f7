"""The host's side of one harness box: start it, answer its environment operations
with the task's real environment, and end it: every process in it killed, the logs
it wrote (in its scratch: it cannot write the trial's directory) copied to the
trial without following a link, its scratch deleted."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import tempfile
import uuid
from pathlib import Path
from typing import Any

from harbor.environments.base import BaseEnvironment

from autoagent.harness_box import box, transfer
from autoagent.harness_box.channel import Channel
from autoagent.sandbox.cgroups import Cgroup

RUNNER = "autoagent.harness_box.runner"
LOG_NAME = "harness-box.log"
PIDS_LIMIT = 512  # processes and threads in one box: a fork bomb in a harness stays in it


class HarnessBoxExited(RuntimeError):
    """The box's process ended before it answered."""


class HarnessBoxUnavailableError(RuntimeError):
    """The host could not give the harness a box (no namespace, a full disk): infrastructure,
    never the candidate's fault. (Harbor records this name; results.py counts it as infra.)"""


class Box:
    def __init__(self, process: asyncio.subprocess.Process, channel: Channel, root: Path,
                 cgroup: Cgroup | None = None) -> None:  # fmt: skip
        self.process, self.channel, self.root = process, channel, root
        self.cgroup = cgroup or Cgroup()
        self.staging, self.logs = root / "scratch" / "staging", root / "scratch" / "logs"
        self.log = root / LOG_NAME  # what the box prints; the host's, not in the box's view
        self.environment: BaseEnvironment | None = None
        self._serving = asyncio.create_task(channel.serve(self._handle))

    @property
    def alive(self) -> bool:
        return self.process.returncode is None and not self.channel.closed

    @classmethod
    async def start(cls, *, harness: str, harness_dir: Path, model: str | None, root: Path | None = None) -> Box:
        root = root or new_root()
        scratch = root / "scratch"
        for place in (scratch / "staging", scratch / "logs", root / "private"):
            place.mkdir(parents=True)
        ours, theirs = socket.socketpair()
        group = Cgroup.create(root.name, None, None, pids=PIDS_LIMIT)  # one limit, and killed as a whole
        try:
            warm = "1" if model and not model.startswith("scripted/") else "0"  # LiteLLM takes seconds
            argv = box.module_command(RUNNER, harness_dir, harness, scratch, model=model,
                                      args=[str(theirs.fileno()), str(scratch), warm])  # fmt: skip
            with open(root / LOG_NAME, "ab") as output:
                process = await asyncio.create_subprocess_exec(
                    *group.join_command(argv), pass_fds=(theirs.fileno(),), stdin=asyncio.subprocess.DEVNULL,
                    stdout=output, stderr=output,
                )  # fmt: skip
        except BaseException:
            ours.close()
            group.remove()
            shutil.rmtree(root, ignore_errors=True)
            raise
        finally:
            theirs.close()
        return cls(process, await Channel.open(ours), root, group)

    async def request(self, op: str, **fields: Any) -> Any:
        try:
            return await self.channel.request(op, **fields)
        except ConnectionError:
            code = await self.process.wait()
            tail = self.log.read_text(errors="replace").strip().splitlines()[-10:]
            raise HarnessBoxExited(
                f"the harness box exited (code {code}) during {op}; the end of its output "
                f"(all of it goes to the trial's agent/{LOG_NAME}):\n" + "\n".join(tail)
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

    async def interrupt(self, grace: float = 3.0) -> None:
        """Ask the harness to stop its run (its `finally` blocks run), for `grace` seconds."""
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.channel.request("cancel"), timeout=grace)

    async def close(self, logs_dir: Path) -> None:
        """End the box (every process in it), and copy its logs into `logs_dir`."""
        self.channel.close()
        self.kill()  # its run is over (or given up on): nothing in it is waited for
        await self.process.wait()
        with contextlib.suppress(OSError):
            self.cgroup.remove()  # empty now that its process is reaped
        self._serving.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await self._serving
        try:
            logs_dir.mkdir(parents=True, exist_ok=True)
            skipped = await asyncio.to_thread(transfer.copy_out, self.logs.parent, "logs", logs_dir, lenient=True)
            with open(logs_dir / LOG_NAME, "ab") as out:
                out.write(self.log.read_bytes())
                out.writelines(f"[harness box] not copied (not a file or a directory): {name}\n".encode()
                               for name in skipped)  # fmt: skip
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def kill(self) -> None:
        """Stop it now: bwrap's death takes its PID namespace, every process in it, along;
        its cgroup goes too (whatever got out of the namespace is killed with it)."""
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
        with contextlib.suppress(OSError):  # busy a moment longer: the next start sweeps it
            self.cgroup.remove()

    def abandon(self) -> None:
        """It will not be used: stop it and remove its scratch, now (also from a
        finalizer, when its event loop may be closed already)."""
        self.kill()
        with contextlib.suppress(RuntimeError):  # the loop is closed
            self.channel.close()
            self._serving.cancel()
        shutil.rmtree(self.root, ignore_errors=True)


ROOT_PREFIX = "autoagent-box-"


def new_root() -> Path:
    """The host directory of a box: its scratch, and places of the host's beside it.
    Its name says which process owns it; the first one made sweeps those of the dead."""
    if not _swept:
        _swept.append(sweep())
    return Path(tempfile.mkdtemp(prefix=f"{ROOT_PREFIX}{os.getpid()}-"))


_swept: list[int] = []


def sweep() -> int:
    """Remove the box directories left by processes that are gone (a run killed with
    -9: its boxes died with it, their directories did not); how many."""
    removed = 0
    for root in Path(tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*-*"):
        owner = root.name.removeprefix(ROOT_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not Path(f"/proc/{owner}").exists():
            shutil.rmtree(root, ignore_errors=True)
            removed += 1
    return removed
