"""A trial as a page a person can read: the instruction, each step's message, tool calls and
their output, then the verifier's output and the reward. Self-contained HTML, like the report."""

from __future__ import annotations

import html
import json
from pathlib import Path

OUTPUT_LIMIT = 20_000  # characters of one tool output shown; the rest is cut with a note

STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.3em; } .note { color: #666; font-size: .9em; }
.step { border-left: 4px solid #ddd; margin: 1em 0; padding: .2em .9em; }
.step.user { border-color: #4c72b0; } .step.agent { border-color: #2a9d4b; } .step.system { border-color: #999; }
.who { font-weight: 600; font-size: .85em; text-transform: uppercase; color: #555; }
pre { background: #f7f7f7; padding: .6em; overflow-x: auto; font-size: .85em; white-space: pre-wrap; }
.call { color: #7b2d8b; }
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _cut(text: str) -> str:
    if len(text) <= OUTPUT_LIMIT:
        return text
    return text[:OUTPUT_LIMIT] + f"\n[... {len(text) - OUTPUT_LIMIT} more characters in the trajectory file ...]"


def render(trial_dir: Path, title: str) -> str:
    """The page for one trial directory (Harbor's layout: agent/trajectory.json, verifier/...)."""
    parts = [f"<h1>{_e(title)}</h1>"]
    result = _read_json(trial_dir / "result.json") or {}
    rewards = (result.get("verifier_result") or {}).get("rewards")
    error = (result.get("exception_info") or {}).get("exception_message")
    parts.append(f"<p>Reward: <b>{_e(json.dumps(rewards) if rewards is not None else 'none')}</b>"
                 + (f" · error: {_e(error)}" if error else "") + "</p>")  # fmt: skip
    trajectory = _read_json(trial_dir / "agent" / "trajectory.json")
    if trajectory is None:
        parts.append("<p class=note>No trajectory was written for this trial.</p>")
    else:
        parts.append(f"<p class=note>{len(trajectory.get('steps', []))} steps · agent "
                     f"{_e((trajectory.get('agent') or {}).get('name', '?'))} · "
                     f"<a href='{_e((trial_dir / 'agent' / 'trajectory.json').as_uri())}'>raw trajectory.json</a></p>")  # fmt: skip
        for step in trajectory.get("steps", []):
            parts.append(_step(step))
    verifier = trial_dir / "verifier" / "test-stdout.txt"
    parts.append("<h2>Verifier output</h2>")
    if verifier.is_file() and (said := verifier.read_text(errors="replace")).strip():
        parts.append(f"<pre>{_e(_cut(said))}</pre>")
    else:
        parts.append("<p class=note>The verifier wrote no output.</p>")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{_e(title)}</title>"
            f"<style>{STYLE}</style></head><body>{''.join(parts)}</body></html>")  # fmt: skip


def _step(step: dict) -> str:
    source = step.get("source", "?")
    out = [f"<div class='step {_e(source)}'><div class=who>{_e(step.get('step_id', ''))} · {_e(source)}</div>"]
    if step.get("message"):
        out.append(f"<pre>{_e(_cut(str(step['message'])))}</pre>")
    results = {r.get("source_call_id"): r.get("content") for r in (step.get("observation") or {}).get("results", [])}
    for call in step.get("tool_calls") or []:
        arguments = call.get("arguments") or {}
        shown = arguments.get("command") if isinstance(arguments, dict) and "command" in arguments else json.dumps(arguments)
        out.append(f"<div class=call>▶ {_e(call.get('function_name', '?'))}</div><pre>{_e(shown)}</pre>")
        if call.get("tool_call_id") in results:
            out.append(f"<pre>{_e(_cut(str(results[call['tool_call_id']])))}</pre>")
    return "".join(out) + "</div>"


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None
