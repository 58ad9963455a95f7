"""Claude Code as the meta-agent (`--meta claude-code`; the extra `autoagent[claude]`).

Claude Code gets the same brief and the same rules as the built-in meta-agent. It
reads files with its own Read and edits with its own Edit and Write; it lists
directories and reaches the ledger, the traces, spot checks and `submit` through our
tools, served in-process over MCP. Glob, Grep and Bash are off: they reach whole
directories, where the held-out tasks and the ledger live.

Every use of its own tools passes our check first (a PreToolUse hook): reading stays
inside the workspace (never the ledger, autoagent.toml or a hidden task), writing goes
to agent.py and .agent/ only, and an edit of agent.py must keep the FIXED ADAPTER
BOUNDARY and name no task. Our code still validates, evaluates and decides.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
from contextlib import aclosing
from pathlib import Path
from typing import Any

from autoagent import spend
from autoagent.meta.agent import Limits, MetaAgentError, Proposal
from autoagent.meta.brief import SYSTEM_PROMPT
from autoagent.meta.tools import MetaTools, Refused

INSTALL = (
    "Claude Code as the meta-agent needs the extra `claude`: pip install 'autoagent[claude]' "
    "(from a checkout: uv sync --extra claude)."
)
SERVER = "autoagent"
# Our MCP tools: the meta-agent's tools that Claude Code has no equivalent of.
OURS = ("list_files", "read_ledger", "experiment_results", "read_trajectory", "read_verifier_output",
        "search_traces", "spot_check", "submit")  # fmt: skip
READERS = {"Read": "file_path"}  # Claude Code's own tools, and the argument naming the file
WRITERS = {"Edit": "file_path", "Write": "file_path"}
SYSTEM_NOTE = """

Tools in this session: read_file is Claude Code's Read, edit_file and write_file are its Edit
and Write; list_files, the ledger and trace tools, spot_check and submit are those of the
`autoagent` server (mcp__autoagent__...). End by calling mcp__autoagent__submit."""


def model_name(model: str) -> str | None:
    """The name Claude Code knows a model by; None for a model of another provider, where
    Claude Code uses its own default (the task agent's model is the meta-agent's by default)."""
    name = model.removeprefix("anthropic/")
    return name if name.startswith("claude") else None


def available() -> str | None:
    """Why the backend cannot run here, or None."""
    try:
        import claude_agent_sdk  # noqa: F401
    except ImportError:
        return INSTALL
    return None


async def propose(
    tools: MetaTools,
    brief: str,
    *,
    model: str,
    api_base: str | None = None,
    limits: Limits = Limits(),
    log: Path | None = None,
) -> Proposal:
    problem = available()
    if problem:
        raise MetaAgentError(problem)
    import claude_agent_sdk as sdk

    meter = spend.Meter.from_env()
    usd = limits.usd
    if meter is not None:  # Claude Code stops itself at max_budget_usd: what is left of the run's budget
        meter.check("meta")
        if meter.budget_usd is not None:
            usd = min(usd, meter.budget_usd - meter.spent())
    server = sdk.create_sdk_mcp_server(SERVER, tools=[_mcp_tool(sdk, tools, name) for name in OURS])
    env = {
        "ENABLE_TOOL_SEARCH": "false",  # our tools in every request, not deferred behind a search
        "MCP_TOOL_TIMEOUT": str(int(limits.seconds * 1000)),  # a spot check may take minutes
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_AUTOUPDATER": "1",
    }  # fmt: skip
    if limits.call_seconds:  # one model call, as for the built-in meta-agent
        env["API_TIMEOUT_MS"] = str(int(limits.call_seconds * 1000))
    if api_base and model_name(model):  # not the endpoint of a task agent of another provider
        env["ANTHROPIC_BASE_URL"] = api_base
    options = sdk.ClaudeAgentOptions(
        cwd=str(tools.tree),  # a candidate's worktree: its edits land there
        model=model_name(model),
        system_prompt=SYSTEM_PROMPT + SYSTEM_NOTE,
        tools=[*READERS, *WRITERS],  # of Claude Code's own; no Bash, Glob, Grep, web or sub-agents
        mcp_servers={SERVER: server},
        strict_mcp_config=True,  # no MCP servers from the user's own configuration
        setting_sources=[],  # nor their settings, which could allow more
        # Allowed without asking (no one is there to answer); the hook below refuses what breaks a rule.
        allowed_tools=[*READERS, *WRITERS, *(f"mcp__{SERVER}__{name}" for name in OURS)],
        # A hook sees every call of Claude Code's own tools (a permission callback would miss
        # the reads Claude Code allows by itself inside its working directory).
        hooks={"PreToolUse": [sdk.HookMatcher(matcher=None, hooks=[_gate(tools)])]},
        max_turns=limits.turns,
        max_budget_usd=usd,
        env=env,
    )  # fmt: skip
    transcript: list[Any] = []
    result = None
    used: dict[str, tuple[str, dict]] = {}  # message id -> (model, usage): the cost if it is cut short
    try:
        async with asyncio.timeout(limits.seconds), aclosing(sdk.query(prompt=_prompt(brief), options=options)) as run:
            async for message in run:
                transcript.append(_plain(message))
                if isinstance(message, sdk.ResultMessage):
                    result = message
                elif isinstance(message, sdk.AssistantMessage) and message.usage:
                    used[message.message_id or str(len(used))] = (message.model, message.usage)
    except TimeoutError:
        raise MetaAgentError(f"no submission within {limits.seconds:.0f} s") from None
    except Exception as error:  # the CLI failed to start, the provider failed for good, ...
        raise MetaAgentError(f"Claude Code failed: {type(error).__name__}: {error}") from error
    finally:
        cost, tokens = _cost(result, used)
        if meter is not None and cost:
            meter.record(role="meta", model=f"claude-code/{model_name(model) or 'default'}", cost_usd=cost,
                         input_tokens=tokens[0], output_tokens=tokens[1])  # fmt: skip
        if log is not None:
            log.parent.mkdir(parents=True, exist_ok=True)
            log.write_text(json.dumps({"backend": "claude-code", "cost_usd": cost, "messages": transcript},
                                      indent=1, default=str))  # fmt: skip
    if tools.submission is None and result is not None and result.is_error:
        # e.g. "Not logged in · Please run /login", or the provider's error after Claude Code's retries
        raise MetaAgentError(f"Claude Code stopped ({result.subtype}): {result.result or result.errors}")
    if tools.submission is None:
        raise MetaAgentError("Claude Code ended without calling submit")
    return Proposal(tools.submission, cost, result.num_turns if result else 0)


async def _prompt(brief: str):
    """The brief as a one-message stream (hooks need the SDK's streaming mode)."""
    yield {"type": "user", "message": {"role": "user", "content": brief}}


def _mcp_tool(sdk: Any, tools: MetaTools, name: str) -> Any:
    schema = next(s["function"] for s in tools.schemas() if s["function"]["name"] == name)

    async def handler(arguments: dict[str, Any]) -> dict[str, Any]:
        result = await tools.call(name, arguments)
        return {"content": [{"type": "text", "text": result}], "is_error": result.startswith(("refused", "error"))}

    return sdk.tool(name, schema["description"], schema["parameters"])(handler)


def _gate(tools: MetaTools):
    async def hook(event: dict[str, Any], tool_use_id: str | None, context: Any) -> dict[str, Any]:
        problem = _problem(tools, event.get("tool_name", ""), event.get("tool_input") or {})
        if problem is None:
            return {}
        return {"hookSpecificOutput": {"hookEventName": "PreToolUse", "permissionDecision": "deny",
                                       "permissionDecisionReason": f"refused: {problem}"}}  # fmt: skip

    return hook


def _problem(tools: MetaTools, name: str, arguments: dict[str, Any]) -> str | None:
    """Our rules for Claude Code's own tools: None to allow, else why not."""
    if name.startswith(f"mcp__{SERVER}__"):
        return None  # ours, with their own checks
    try:
        if name in READERS:
            path = arguments.get(READERS[name]) or str(tools.root)
            tools.check_path(_relative(tools, path))
        elif name in WRITERS:
            relative = _relative(tools, arguments.get(WRITERS[name], ""), write=True)
            target = tools.check_path(relative, write=True)
            tools.check_text(target, _after(target, name, arguments))
        else:
            raise Refused(f"the tool {name} is not available to the meta-agent")
    except Refused as refusal:
        return str(refusal)
    return None


def _relative(tools: MetaTools, path: str, write: bool = False) -> str:
    """Claude Code passes absolute paths; our rules speak in workspace-relative ones. The harness
    files are the candidate's, in its worktree (Claude Code's working directory): an edit lands
    there, never in the workspace's own agent.py, which is the best's. (No symlink is resolved
    here: check_path refuses links on the way.)"""
    if not os.path.isabs(path):
        return path
    normal = Path(os.path.normpath(path))
    for base in dict.fromkeys((tools.tree, tools.tree.resolve(), tools.root, tools.root.resolve())):
        if normal.is_relative_to(base):
            relative = normal.relative_to(base)
            if write and tools.tree != tools.root and base in (tools.root, tools.root.resolve()):
                raise Refused(f"{path} is the best harness's copy; edit the candidate's: {tools.tree / relative}")
            return str(relative)
    raise Refused(f"{path} is outside the workspace")


def _after(target: Path, name: str, arguments: dict[str, Any]) -> str:
    """What the file would hold after the edit, to check it before it happens."""
    if name == "Write":
        return arguments.get("content", "")
    text = target.read_text() if target.exists() else ""
    old, new = arguments.get("old_string", ""), arguments.get("new_string", "")
    return text.replace(old, new) if arguments.get("replace_all") else text.replace(old, new, 1)


def _cost(result: Any, used: dict[str, tuple[str, dict]]) -> tuple[float, tuple[int, int]]:
    """USD and (input, output) tokens: Claude Code's own figure when it finished; when it was
    cut short (time limit, a failure), its messages so far at list price, cached input as
    full-price input (an upper bound: a budget should not be undercounted)."""
    if result is not None:
        usage = result.usage or {}
        return result.total_cost_usd or 0.0, (_input_tokens(usage), usage.get("output_tokens") or 0)
    if not used:
        return 0.0, (0, 0)
    from autoagent import llm  # LiteLLM is slow to import: only here

    cost, inputs, outputs = 0.0, 0, 0
    for model, usage in used.values():
        tokens = _input_tokens(usage), usage.get("output_tokens") or 0
        cost += llm.usage_cost(model, *tokens) or 0.0
        inputs, outputs = inputs + tokens[0], outputs + tokens[1]
    return cost, (inputs, outputs)


def _input_tokens(usage: dict[str, Any]) -> int:
    keys = ("input_tokens", "cache_read_input_tokens", "cache_creation_input_tokens")
    return sum(usage.get(key) or 0 for key in keys)


def _plain(message: Any) -> Any:
    if dataclasses.is_dataclass(message):
        return {"type": type(message).__name__, **dataclasses.asdict(message)}
    return str(message)
