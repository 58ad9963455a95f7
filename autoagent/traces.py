"""Reading what trials left behind: ATIF trajectories and verifier output.

Traces are everything the meta-agent learns from, but a night of them would flood
any context. So this module renders them at three depths: a digest of one failed
trial (a few lines), a range of trajectory steps, and a search across trials.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from autoagent.evaluate.results import Trial


def trajectory(trial_dir: str | Path) -> dict[str, Any] | None:
    path = Path(trial_dir) / "agent" / "trajectory.json"
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def verifier_output(trial_dir: str | Path, limit: int = 4000) -> str:
    path = Path(trial_dir) / "verifier" / "test-stdout.txt"
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(the verifier wrote no output)"
    return clip(text, limit)


def clip(text: str, limit: int) -> str:
    """Head and tail of `text` within `limit` characters, saying how much was left out."""
    text = text or ""
    if len(text) <= limit:
        return text
    half = max(limit // 2, 1)
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters left out ...]\n{text[-half:]}"


def render_steps(data: dict[str, Any], start: int = 1, end: int | None = None, limit: int = 2000) -> str:
    """Steps `start`..`end` (1-based, inclusive) as readable text, each field clipped."""
    steps = data.get("steps", [])
    end = min(end or len(steps), len(steps))
    lines = [f"(steps {start}-{end} of {len(steps)})"]
    for step in steps[start - 1 : end]:
        lines.append(f"--- step {step['step_id']} [{step['source']}]")
        if step.get("reasoning_content"):
            lines.append(f"reasoning: {clip(step['reasoning_content'], limit)}")
        message = step.get("message")
        if message:
            lines.append(clip(message if isinstance(message, str) else json.dumps(message), limit))
        results = {
            r.get("source_call_id"): r.get("content") for r in (step.get("observation") or {}).get("results", [])
        }
        for call in step.get("tool_calls") or []:
            lines.append(f"> {call['function_name']}({clip(json.dumps(call['arguments']), limit)})")
            output = results.get(call["tool_call_id"])
            if output is not None:
                lines.append(clip(output if isinstance(output, str) else json.dumps(output), limit))
    return "\n".join(lines)


def digest(trial: Trial, limit: int = 300) -> str:
    """A failed trial in a few lines: reward, error, the agent's last words and the verifier's."""
    lines = [f"## {trial.task} (reward {trial.reward:g}{', error ' + trial.error if trial.error else ''})"]
    data = trajectory(trial.trial_dir)
    if data is None:
        lines.append("no trajectory")
    else:
        agent_steps = [s for s in data.get("steps", []) if s["source"] == "agent"]
        lines.append(f"{len(agent_steps)} agent turns, {len(data.get('steps', []))} steps")
        if agent_steps:
            last = agent_steps[-1]
            if last.get("message"):
                lines.append(f"last message: {clip(str(last['message']), limit)}")
            called = [s for s in agent_steps if s.get("tool_calls")]
            if called:
                call = called[-1]["tool_calls"][-1]
                lines.append(f"last call: {clip(json.dumps(call['arguments']), limit)}")
    tail = verifier_output(trial.trial_dir, 10**9).strip()[-limit:]
    if tail:
        lines.append(f"verifier output ends: {tail}")
    return "\n".join(lines)


def search(pattern: str, trials: list[tuple[str, Trial]], max_hits: int = 30, context: int = 120) -> str:
    """Lines matching `pattern` (a regex) in the trajectories and verifier outputs of `trials`."""
    try:
        regex = re.compile(pattern, re.IGNORECASE)
    except re.error as error:
        return f"error: bad regex: {error}"
    hits: list[str] = []
    for label, trial in trials:
        sources = [
            ("trajectory", Path(trial.trial_dir) / "agent" / "trajectory.json"),
            ("verifier", Path(trial.trial_dir) / "verifier" / "test-stdout.txt"),
        ]
        for kind, path in sources:
            try:
                text = path.read_text(errors="replace")
            except OSError:
                continue
            for match in regex.finditer(text):
                start = max(0, match.start() - context)
                snippet = text[start : match.end() + context].replace("\n", "\\n")
                hits.append(f"{label} {kind}: ...{snippet}...")
                if len(hits) >= max_hits:
                    return "\n".join(hits) + f"\n(stopped at {max_hits} hits)"
    return "\n".join(hits) or "no matches"
