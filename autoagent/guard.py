"""The checks a harness must pass before any task runs.

A candidate must compile and import in a fresh process, keep the FIXED ADAPTER
BOUNDARY line and everything below it byte for byte, and name no task and no file
the verifier owns: a harness that knows the tasks or touches the grading is not an
improvement, whatever it scores.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from autoagent.harness_box import box as harness_box

BOUNDARY = "FIXED ADAPTER BOUNDARY"
# Paths and files that belong to the verifier or the reference solution.
VERIFIER_FILES = re.compile(r"/tests\b|/solution\b|/logs/verifier|\breward\.(?:txt|json)\b|\btest_outputs\b")


BOUNDARY_LINE = re.compile(rf"^#[^\n]*{BOUNDARY}[^\n]*$", re.MULTILINE)  # a comment line


# A command that reads or writes the verifier's files: the path stands on its own.
VERIFIER_PATHS = re.compile(r"(?<![\w./-])/(?:logs/verifier|tests|solution)(?![\w-])")


def trace_problem(trajectory: dict | None) -> str | None:
    """Did the agent, in a trial's trajectory, touch the verifier's or the solution's files?"""
    for step in (trajectory or {}).get("steps", []):
        for call in step.get("tool_calls") or []:
            match = VERIFIER_PATHS.search(json.dumps(call.get("arguments", {})))
            if match:
                return f"called {call.get('function_name')} on {match.group(0)} (step {step.get('step_id')})"
    return None


def fixed_part(text: str) -> str | None:
    """The boundary line and everything after it, or None without exactly one boundary line."""
    lines = list(BOUNDARY_LINE.finditer(text))
    return text[lines[0].start() :] if len(lines) == 1 else None


def editable_part(text: str) -> str:
    fixed = fixed_part(text)
    return text[: len(text) - len(fixed)] if fixed is not None else text


def boundary_problem(candidate: str, baseline: str) -> str | None:
    expected = fixed_part(baseline)
    if expected is None:
        raise ValueError(f"the baseline harness has no single `# ... {BOUNDARY} ...` line")
    if len(BOUNDARY_LINE.findall(candidate)) != 1:
        return f"the harness must keep exactly one `# ... {BOUNDARY} ...` comment line"
    if fixed_part(candidate) != expected:
        return f"the `{BOUNDARY}` line or the code below it changed; it must stay byte-identical"
    return None


def naming_problem(text: str, task_names: list[str], where: str = "the harness") -> str | None:
    """Does `text` name a task, or a file that only the verifier should touch?"""
    for name in sorted(task_names, key=len, reverse=True):
        if re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text):
            return f"{where} names the task {name!r}: a harness must not know the tasks"
    match = VERIFIER_FILES.search(text)
    if match:
        return f"{where} mentions {match.group(0)!r}, which belongs to the verifier"
    return None


def import_problem(path: Path, name: str = "AutoAgent", boundary: bool = True) -> str | None:
    """Why `path` cannot serve as a harness (syntax, import, no class `name`), or None.
    `boundary`: whether it must be an AutoAgent harness, with the FIXED ADAPTER BOUNDARY."""
    source = path.read_text()
    try:
        compile(source, str(path), "exec")
    except SyntaxError as error:
        pointer = f"\n    {error.text.rstrip()}" if error.text else ""
        return f"{path}, line {error.lineno}: {error.msg}{pointer}"
    if boundary and not BOUNDARY_LINE.search(source):
        return f"{path} has no `# ... {BOUNDARY} ...` line: it is not an AutoAgent harness."
    # Import it as Harbor will, in a fresh process, in the box a trial runs it in.
    try:
        completed = harness_box.run_import_check(path, name)
    except subprocess.TimeoutExpired as error:
        return f"{path} does not import within {error.timeout:.0f} s (does it wait for something at import?)"
    if completed.returncode == 3:
        return f"{path} imports, but defines no class {name} for Harbor to run."
    if completed.returncode != 0:
        lines = completed.stderr.strip().splitlines()
        where = [line.strip() for line in lines if f"{path.name}\", line" in line]
        return f"{path} does not import: {lines[-1] if lines else 'unknown error'}" + (
            f" ({where[-1]})" if where else ""
        )
    return None


def harness_problem(root: Path, baseline: str, task_names: list[str]) -> str | None:
    """Every check, cheapest first; the first problem found, or None."""
    harness = root / "agent.py"
    if not harness.is_file():
        return "agent.py is missing"
    text = harness.read_text()
    problem = boundary_problem(text, baseline) or naming_problem(editable_part(text), task_names)
    if problem:
        return problem
    for extra in sorted((root / ".agent").rglob("*")) if (root / ".agent").is_dir() else []:
        if extra.is_file():
            try:
                content = extra.read_text()
            except UnicodeDecodeError:
                continue
            problem = naming_problem(content, task_names, f".agent/{extra.relative_to(root / '.agent')}")
            if problem:
                return problem
    return import_problem(harness)
