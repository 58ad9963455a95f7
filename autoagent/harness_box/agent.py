"""`BoxedAgent`: the Harbor agent that runs a harness in its box.

Harbor runs it in the worker like any agent; it takes a box for the harness
(`pool.py`), passes `setup()` and `run()` on to the harness's own agent in there,
answers its environment operations with the trial's environment, and at the end
copies the harness's logs (its trajectory) to where Harbor expects them. A cancelled
run (Harbor's timeout, Ctrl-C) lets the harness unwind briefly, then kills the box;
Harbor records the timeout as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

from harbor.agents.base import BaseAgent
from harbor.agents.capabilities import AgentCapabilities
from harbor.environments.base import BaseEnvironment
from harbor.models.agent.context import AgentContext
from harbor.models.trial.result import AgentInfo

from autoagent import spend
from autoagent.harness_box import pool
from autoagent.harness_box.channel import RemoteError
from autoagent.harness_box.host import Box, HarnessBoxExited, HarnessBoxUnavailableError


class BoxedAgent(BaseAgent):
    capabilities = AgentCapabilities(atif=True)

    def __init__(self, *args, harness: str = "agent:AutoAgent", harness_dir: str | None = None,
                 harness_kwargs: dict[str, Any] | None = None, **kwargs) -> None:  # fmt: skip
        super().__init__(*args, **kwargs)
        self.harness = harness
        self.harness_dir = Path(harness_dir or os.getcwd()).absolute()  # the worker runs in the workspace
        self.harness_kwargs = harness_kwargs or {}
        self._box: Box | None = None
        self._info: AgentInfo | None = None
        # Take a box now (a spare one is ready, or one starts while Harbor starts the
        # task's environment). If the trial never gets to use it, it is ended when
        # this agent is dropped.
        self._starting: asyncio.Task | None = None
        with contextlib.suppress(RuntimeError):  # no running loop: take it at setup()
            self._starting = asyncio.get_running_loop().create_task(self._take_box())
            weakref.finalize(self, _abandon, self._starting)

    @staticmethod
    def name() -> str:
        return "autoagent"

    def version(self) -> str:
        return "1"

    def to_agent_info(self) -> AgentInfo:
        return self._info or super().to_agent_info()  # the harness's own, once its box has said

    def _take_box(self) -> Awaitable[Box]:
        return pool.take(self.harness, self.harness_dir, self.model_name)

    async def setup(self, environment: BaseEnvironment) -> None:
        starting, self._starting = self._starting, None
        try:
            self._box = await (starting or self._take_box())
        except OSError as error:  # the host's doing (a full disk, no cgroup, no fork): not the harness's
            raise HarnessBoxUnavailableError(f"the host could not start a harness box: {error}") from None
        self._box.environment = environment
        try:
            self._info = AgentInfo.model_validate(await self._box.request("start", **self._start_message()))
            await self._box.request("setup")
        except BaseException as error:
            await self._close()
            if isinstance(error, HarnessBoxExited) and "\nbwrap: " in str(error):  # the box never came up
                raise HarnessBoxUnavailableError(f"the harness box could not start: {error}") from None
            raise _rebuilt(error) if isinstance(error, RemoteError) else error from None

    async def run(self, instruction: str, environment: BaseEnvironment, context: AgentContext) -> None:
        if self._box is None:
            await self.setup(environment)
        self._box.environment = environment
        try:
            result = await self._box.request("run", instruction=instruction)
            _fill(context, result["context"])
        except RemoteError as error:
            _fill(context, error.detail.get("context"))
            raise _rebuilt(error) from None
        except asyncio.CancelledError:  # Harbor's timeout, or Ctrl-C
            await self._box.interrupt()  # the harness unwinds (and saves its trajectory), briefly
            raise
        finally:
            await self._close()

    def _start_message(self) -> dict[str, Any]:
        return {
            "harness": self.harness, "kwargs": self.harness_kwargs, "logs_dir": str(self._box.logs),
            "model_name": self.model_name, "environment_logs_dir": str(self.environment_logs_dir),
            "skip_model_parsing": self.skip_model_parsing, "session_id": self.session_id,
            "context_id": str(self.context_id) if self.context_id else None,
        }  # fmt: skip

    async def _close(self) -> None:
        box, self._box = self._box, None
        if box is not None:
            await box.close(Path(self.logs_dir))


def _abandon(starting: asyncio.Task) -> None:
    """The agent was dropped: end its box, if it was never used (else this does nothing)."""
    def end(task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is None:
            task.result().abandon()

    if starting.done():
        end(starting)
    else:
        starting.add_done_callback(end)


def _fill(context: AgentContext, data: dict[str, Any] | None) -> None:
    if data:
        filled = AgentContext.model_validate(data)
        for field in AgentContext.model_fields:
            setattr(context, field, getattr(filled, field))


def _rebuilt(error: RemoteError) -> Exception:
    """The harness's error, under its own class name (Harbor files trials by it)."""
    message = f"{error} (raised in the harness box)\n{error.detail.get('traceback', '')}".rstrip()
    if error.kind == spend.BudgetExceededError.__name__:
        return spend.BudgetExceededError(message)
    return type(error.kind, (RuntimeError,), {"__module__": __name__})(message)
