"""The task agent: a system prompt, one bash tool and a turn budget.

Everything above the FIXED ADAPTER BOUNDARY is the harness under improvement: the
prompt, the model settings, the tools, how the agent is built and how a task is run.
Change any of it. Below the boundary is the adapter that lets Harbor run this file
(`PYTHONPATH=. harbor run -p tasks -a agent:AutoAgent`); AutoAgent rejects any change to it.

The agent loop runs outside the task's sandbox (under AutoAgent, in a box of its own
that sees no task's solution or tests); only the tools' commands run in the sandbox,
so API keys never enter it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from harbor.environments.base import BaseEnvironment

from autoagent import llm
from autoagent.trajectory import TrajectoryRecorder

# -- settings ----------------------------------------------------------------------

MODEL = "anthropic/claude-sonnet-4-5"  # autoagent.toml's [agent] model overrides this
MODEL_SETTINGS: dict = {}  # passed to the model on every turn, e.g. {"temperature": 0}
MAX_TURNS = 30
COMMAND_TIMEOUT_SEC = 600
MAX_OUTPUT_CHARS = 20_000  # longer tool output is shortened; all of it is saved in the sandbox

SYSTEM_PROMPT = """\
You are a capable software engineer working in a Linux sandbox to complete a task.
Use the bash tool to inspect files, run programs and make changes. Work step by step
and check your work (run the program, look at the output file) before you finish.
When the task is complete, reply with a short summary and no tool call."""

# -- tools -------------------------------------------------------------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "bash",
            "description": (
                "Run a bash command in the task's sandbox and return its exit code, "
                f"stdout and stderr. Each call is a fresh shell; it times out after "
                f"{COMMAND_TIMEOUT_SEC} s. Start long-running servers in the background."
            ),
            "parameters": {
                "type": "object",
                "properties": {"command": {"type": "string", "description": "The command."}},
                "required": ["command"],
            },
        },
    }
]


async def bash(environment: BaseEnvironment, command: str) -> str:
    try:
        result = await environment.exec(command, timeout_sec=COMMAND_TIMEOUT_SEC)
    except Exception as error:  # a timeout or a sandbox failure: tell the model
        return f"error: {error}"
    parts = [f"exit code: {result.return_code}"]
    if result.stdout:
        parts.append(f"stdout:\n{result.stdout}")
    if result.stderr:
        parts.append(f"stderr:\n{result.stderr}")
    return "\n".join(parts)


TOOL_FUNCTIONS = {"bash": bash}


async def run_tool(environment: BaseEnvironment, call: llm.ToolCall) -> str:
    function = TOOL_FUNCTIONS.get(call.name)
    if function is None:
        return f"error: there is no tool named {call.name!r}"
    try:
        return await function(environment, **call.arguments)
    except TypeError as error:  # wrong or missing arguments
        return f"error: bad arguments for {call.name}: {error}"


def shorten(output: str, saved_at: str) -> str:
    """What the model sees of a long output: its head and tail, and where the rest is."""
    half = MAX_OUTPUT_CHARS // 2
    cut = len(output) - 2 * half
    return f"{output[:half]}\n[... {cut} characters cut; all of it is in {saved_at} ...]\n{output[-half:]}"


# -- the agent loop ------------------------------------------------------------------


async def run_task(
    instruction: str,
    environment: BaseEnvironment,
    model: str,
    trace: TrajectoryRecorder,
    save_output: Callable[[str], Awaitable[str]],  # stores text in the sandbox; returns its path
    api_base: str | None = None,
) -> None:
    """Ask the model for a turn, run the tools it calls, repeat until it stops."""
    messages = [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": instruction},
    ]
    trace.system(SYSTEM_PROMPT)
    trace.user(instruction)
    for _ in range(MAX_TURNS):
        reply = await llm.complete(model, messages, TOOLS, api_base=api_base, **MODEL_SETTINGS)
        trace.agent_turn(reply)
        messages.append(reply.message)
        if not reply.tool_calls:
            return  # the model says it is done
        for call in reply.tool_calls:
            output = await run_tool(environment, call)
            if len(output) > MAX_OUTPUT_CHARS:
                output = shorten(output, await save_output(output))
            trace.observe(call.id, output)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": output})


# ======================== FIXED ADAPTER BOUNDARY ========================
# Below this line: how Harbor runs the agent above. AutoAgent rejects any
# candidate harness that changes a byte of it.

import uuid  # noqa: E402
from pathlib import Path  # noqa: E402

from harbor.agents.base import BaseAgent  # noqa: E402
from harbor.agents.capabilities import AgentCapabilities  # noqa: E402
from harbor.models.agent.context import AgentContext  # noqa: E402


class AutoAgent(BaseAgent):
    capabilities = AgentCapabilities(atif=True)

    def __init__(self, *args, api_base: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.api_base = api_base

    @staticmethod
    def name() -> str:
        return "autoagent"

    def version(self) -> str:
        return "1"

    async def setup(self, environment: BaseEnvironment) -> None:
        pass

    async def run(self, instruction: str, environment: BaseEnvironment, context: AgentContext) -> None:
        model = self.model_name or MODEL
        trace = TrajectoryRecorder(
            Path(self.logs_dir) / "trajectory.json",
            agent_name=self.name(), version=self.version(), model=model,
            tools=TOOLS, session_id=self.session_id,
        )  # fmt: skip

        async def save_output(text: str) -> str:
            name = f"outputs/{uuid.uuid4().hex[:8]}.txt"
            on_host = Path(self.logs_dir) / name
            on_host.parent.mkdir(parents=True, exist_ok=True)
            on_host.write_text(text)
            inside = f"{self.environment_logs_dir}/{name}"
            await environment.upload_file(on_host, inside)
            return inside

        try:
            await run_task(instruction, environment, model, trace, save_output, self.api_base)
        finally:
            trace.save()
            trace.fill(context)
