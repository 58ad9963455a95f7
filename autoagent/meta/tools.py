"""The meta-agent's tools: read the workspace and the traces, edit the harness, submit.

Every path is checked before it is touched: relative to the workspace, no `..`, no
symlink on the way, and writes only to agent.py and .agent/. An edit of agent.py
that changes the FIXED ADAPTER BOUNDARY or names a task is refused on the spot,
with the reason, so the meta-agent can fix it before it submits.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from autoagent import guard, traces
from autoagent.evaluate import effort
from autoagent.evaluate.results import Trial
from autoagent.history import HARNESS_FILES
from autoagent.ledger import Ledger

READ_LIMIT = 40_000  # characters of a file returned at once
# The ledger tools give what may be seen of results; autoagent.toml names the held-out tasks.
HIDDEN = {".git", ".autoagent", "__pycache__", "results.tsv", "autoagent.toml"}


class Refused(Exception):
    """A tool call that breaks a rule; the message goes back to the meta-agent."""


@dataclass
class Submission:
    description: str
    hypothesis: str
    expected_flips: list[str]
    overfitting: str


SpotCheck = Callable[[list[str]], Awaitable[tuple[str, list[Trial]]]]


@dataclass
class MetaTools:
    root: Path
    ledger: Ledger
    tasks: list[str]  # the task names the meta-agent may see (the search split)
    baseline: str  # the baseline agent.py: its fixed part must survive every edit
    tasks_dir: Path | None = None  # where the tasks live: hidden ones, tests and solutions stay unread
    off_limits: list[str] = field(default_factory=list)  # task names no edit may mention
    harness_root: Path | None = None  # where agent.py and .agent/ are: the candidate's worktree (default: root)
    run_spot_check: SpotCheck | None = None  # runs the current harness on tasks
    max_spot_checks: int = 3
    submission: Submission | None = None
    spot_checks: dict[str, list[Trial]] = field(default_factory=dict)

    # -- plumbing ---------------------------------------------------------------

    def schemas(self) -> list[dict[str, Any]]:
        return [_schema(getattr(self, name)) for name in TOOL_NAMES]

    async def call(self, name: str, arguments: dict[str, Any]) -> str:
        if name not in TOOL_NAMES:
            return f"error: there is no tool {name!r}; the tools are {', '.join(TOOL_NAMES)}"
        try:
            result = getattr(self, name)(**arguments)
            return await result if inspect.isawaitable(result) else result
        except Refused as refusal:
            return f"refused: {refusal}"
        except TypeError as error:
            return f"error: bad arguments for {name}: {error}"
        except Exception as error:  # a tool's own failure must not end the proposal
            return f"error: {name} failed: {type(error).__name__}: {error}"

    @property
    def tree(self) -> Path:
        """Where the harness files being edited are."""
        return self.harness_root or self.root

    def check_path(self, path: str, *, write: bool = False) -> Path:
        """The file `path` names, if the meta-agent may read it (or write it); else Refused.
        agent.py and .agent/ are the candidate's (its worktree's); the rest, the workspace's."""
        relative = PurePosixPath(path)
        if relative.is_absolute() or ".." in relative.parts:
            raise Refused(f"{path!r}: use a path relative to the workspace, without '..'")
        base = self.tree if relative.parts and relative.parts[0] in HARNESS_FILES else self.root
        target = base / relative
        for part in [target, *target.parents]:
            if part == base:
                break
            if part.is_symlink():
                raise Refused(f"{path!r}: {part.relative_to(base)} is a symlink; links are not followed")
        if not target.resolve().is_relative_to(base.resolve()):
            raise Refused(f"{path!r} is outside the workspace")
        if relative.parts and relative.parts[0] in HIDDEN:
            raise Refused(f"{path!r}: {relative.parts[0]} is not readable; use the ledger and trace tools")
        inside = self._in_tasks(target)
        if inside is not None:
            task, rest = inside
            if task and task not in self.tasks:
                raise Refused(f"{path!r}: there is no such task you can see")
            if rest and rest[0] in ("tests", "solution"):
                raise Refused(f"{path!r}: a task's tests and solution are the verifier's, not yours to read")
        if write and str(relative) != "agent.py" and (not relative.parts or relative.parts[0] != ".agent"):
            raise Refused(f"{path!r}: only agent.py and files under .agent/ may be changed")
        return target

    def _in_tasks(self, target: Path) -> tuple[str | None, tuple[str, ...]] | None:
        """(task, the rest of the path) when `target` lies in the tasks directory."""
        if self.tasks_dir is None:
            return None
        try:
            parts = target.resolve().relative_to(self.tasks_dir.resolve()).parts
        except ValueError:
            return None
        return (parts[0] if parts else None), parts[1:]

    def check_text(self, path: Path, text: str) -> None:
        """Refused unless `text` may be written to `path`: boundary intact, no task named."""
        if path.name == "agent.py" and path.parent == self.tree:
            problem = guard.boundary_problem(text, self.baseline)
            problem = problem or guard.naming_problem(guard.editable_part(text), self.tasks + self.off_limits)
        else:
            shown = path.relative_to(self.tree if path.is_relative_to(self.tree) else self.root)
            problem = guard.naming_problem(text, self.tasks + self.off_limits, str(shown))
        if problem:
            raise Refused(f"{problem}; the file was not changed")

    def _experiment(self, experiment: int | str) -> tuple[str, list[Trial]]:
        key = str(experiment)
        if key in self.spot_checks:
            return key, self.spot_checks[key]
        found = {str(e.id): e for e in self.ledger.experiments()}
        if key not in found:
            known = ", ".join(list(found) + list(self.spot_checks)) or "none yet"
            raise Refused(f"no experiment {key!r} (known: {known})")
        return key, [Trial.from_record(t) for t in found[key].trials if t["task"] in self.tasks]

    def _trial(self, experiment: int | str, task: str, attempt: int) -> Trial:
        key, trials = self._experiment(experiment)
        matching = [t for t in trials if t.task == task]
        if not matching:
            raise Refused(f"experiment {key} has no trial of {task!r}")
        if not 1 <= attempt <= len(matching):
            raise Refused(f"{task!r} has {len(matching)} attempt(s) in experiment {key}")
        return matching[attempt - 1]

    # -- the tools (their docstrings are what the model reads) -------------------

    def list_files(self, path: str = ".") -> str:
        """List a directory of the workspace (directories end with /)."""
        target = self.check_path(path)
        if not target.is_dir():
            raise Refused(f"{path!r} is not a directory")
        entries = sorted(p for p in target.iterdir() if p.name not in HIDDEN)
        if self._in_tasks(target) == (None, ()):  # the tasks directory: only the visible tasks
            entries = [p for p in entries if p.name in self.tasks]
        return "\n".join(p.name + ("/" if p.is_dir() else "") for p in entries) or "(empty)"

    def read_file(self, path: str, start_line: int = 1, end_line: int | None = None) -> str:
        """Read a workspace file, with line numbers (optionally lines start_line..end_line)."""
        target = self.check_path(path)
        if not target.is_file():
            raise Refused(f"{path!r} is not a file")
        lines = target.read_text(errors="replace").splitlines()
        end = min(end_line or len(lines), len(lines))
        shown = "\n".join(f"{n:5d}  {lines[n - 1]}" for n in range(max(start_line, 1), end + 1))
        return traces.clip(shown, READ_LIMIT) + f"\n({len(lines)} lines in all)"

    def write_file(self, path: str, content: str) -> str:
        """Replace the whole of agent.py or a file under .agent/ with `content`."""
        target = self.check_path(path, write=True)
        self.check_text(target, content)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        return f"wrote {path} ({len(content.splitlines())} lines)"

    def edit_file(self, path: str, old_text: str, new_text: str) -> str:
        """Replace `old_text`, which must occur exactly once, with `new_text` in agent.py or .agent/."""
        target = self.check_path(path, write=True)
        if not target.is_file():
            raise Refused(f"{path!r} does not exist; use write_file to create it")
        text = target.read_text()
        count = text.count(old_text)
        if count != 1:
            raise Refused(f"old_text occurs {count} times in {path}; it must occur exactly once")
        updated = text.replace(old_text, new_text)
        self.check_text(target, updated)
        target.write_text(updated)
        return f"edited {path}"

    def read_ledger(self) -> str:
        """The ledger (results.tsv): every experiment with its score, status and description."""
        experiments = self.ledger.experiments()
        if not experiments:
            return "no experiments yet"
        rows = ["id\tstatus\tpassed\thit_rate\tdescription\twhy"]
        for e in experiments:
            passed = "" if e.passed is None else f"{e.passed}/{e.total}"
            hits = "" if e.hit_rate is None else f"{e.hit_rate:.2f}"
            rows.append(f"{e.id}\t{e.verdict}\t{passed}\t{hits}\t{e.description}\t{e.public_reason or e.reason}")
        return "\n".join(rows)

    def experiment_results(self, experiment: int | str) -> str:
        """Per-task results of an experiment (or a spot check), and what flipped against its parent."""
        key, trials = self._experiment(experiment)
        lines = []
        record = next((e for e in self.ledger.experiments() if str(e.id) == key), None)
        if record:
            lines.append(f"experiment {key}: {record.verdict}. {record.description}".strip())
            if record.hypothesis:
                lines.append(f"hypothesis: {record.hypothesis}")
            if record.reason:
                lines.append(f"decision: {record.public_reason or record.reason}")
            if record.expected_flips:
                lines.append(f"it expected to fix: {', '.join(record.expected_flips)}")
            for kind in ("fixed", "broken"):
                names = [t for t in record.flips.get(kind, []) if t in self.tasks]
                if names:
                    lines.append(f"{kind} against its parent: {', '.join(names)}")
            measure = record.effort.get("measure")
            if measure:
                change = record.effort.get("change")
                lines.append(f"cost per task ({measure}): {effort.fmt(measure, record.effort.get(measure))}"
                             + ("" if change is None else f", {change:+.0%} against its parent"))  # fmt: skip
        for trial in trials:
            error = f"  error: {trial.error}" if trial.error else ""
            lines.append(f"{trial.task}: reward {trial.reward:g} · {effort.line(vars(trial))}{error}")
        return "\n".join(lines) or f"experiment {key} has no trials"

    def read_trajectory(self, experiment: int | str, task: str, start_step: int = 1,
                        end_step: int | None = None, attempt: int = 1) -> str:  # fmt: skip
        """Steps start_step..end_step of a trial's trajectory: messages, reasoning, tool calls, outputs."""
        trial = self._trial(experiment, task, attempt)
        data = traces.trajectory(trial.trial_dir)
        if data is None:
            return "this trial has no trajectory"
        return f"(this trial: {effort.line(vars(trial))})\n" + traces.render_steps(data, start_step, end_step)

    def read_verifier_output(self, experiment: int | str, task: str, attempt: int = 1) -> str:
        """What the verifier printed for a trial (why it passed or failed)."""
        return traces.verifier_output(self._trial(experiment, task, attempt).trial_dir, 8000)

    def search_traces(self, pattern: str, experiment: int | str | None = None) -> str:
        """Search (regex) the trajectories and verifier outputs of an experiment (default: the latest)."""
        if experiment is None:
            evaluated = [e for e in self.ledger.experiments() if e.trials]
            if not evaluated:
                return "no experiment has traces yet"
            experiment = evaluated[-1].id
        key, trials = self._experiment(experiment)
        return traces.search(pattern, [(f"[{key}/{t.task}]", t) for t in trials])

    async def spot_check(self, tasks: list[str]) -> str:
        """Run the harness as edited now on a few tasks (at most 3) and report how it did."""
        if self.run_spot_check is None:
            raise Refused("spot checks are not available in this run")
        if len(self.spot_checks) >= self.max_spot_checks:
            raise Refused(f"the limit of {self.max_spot_checks} spot checks per proposal is reached")
        unknown = [t for t in tasks if t not in self.tasks]
        if unknown or not tasks or len(tasks) > 3:
            raise Refused(f"name 1 to 3 known tasks (unknown: {', '.join(unknown) or 'none'})")
        problem = guard.import_problem(self.tree / "agent.py")
        if problem:
            raise Refused(f"the harness does not import, so it cannot run: {problem}")
        key, trials = await self.run_spot_check(tasks)
        self.spot_checks[key] = trials
        lines = [f"spot check {key} (read its traces with experiment={key!r}):"]
        lines += [f"{t.task}: reward {t.reward:g} · {effort.line(vars(t))}" + (f"  error: {t.error}" if t.error else "")
                  for t in trials]  # fmt: skip
        return "\n".join(lines)

    def submit(self, description: str, hypothesis: str, expected_flips: list[str], overfitting: str) -> str:
        """Submit the edited harness: what changed, why it should help, the tasks you expect to
        flip (fail to pass), and your answer to: if this exact task disappeared, would this still
        be a worthwhile harness improvement?"""
        unknown = [t for t in expected_flips if t not in self.tasks]
        if unknown:
            raise Refused(f"expected_flips names unknown tasks: {', '.join(unknown)}")
        if not description.strip() or not hypothesis.strip() or not overfitting.strip():
            raise Refused("description, hypothesis and overfitting must all be filled in")
        self.submission = Submission(description.strip(), hypothesis.strip(), expected_flips, overfitting.strip())
        return "submitted"


TOOL_NAMES = (
    "list_files", "read_file", "write_file", "edit_file", "read_ledger", "experiment_results",
    "read_trajectory", "read_verifier_output", "search_traces", "spot_check", "submit",
)  # fmt: skip


def _schema(method: Callable[..., Any]) -> dict[str, Any]:
    """An OpenAI tool schema from a method's signature and docstring."""
    # Experiment ids are plain strings to the model ("3", "spot-1"): every provider takes those.
    types = {"int": "integer", "int | None": "integer", "list[str]": "array"}
    properties, required = {}, []
    for name, parameter in inspect.signature(method).parameters.items():
        kind = types.get(str(parameter.annotation), "string")
        spec: dict[str, Any] = {"type": kind}
        if kind == "array":
            spec["items"] = {"type": "string"}
        properties[name] = spec
        if parameter.default is inspect.Parameter.empty:
            required.append(name)
    return {
        "type": "function",
        "function": {
            "name": method.__name__,
            "description": " ".join((method.__doc__ or "").split()),
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }

