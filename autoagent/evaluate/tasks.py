"""Find the Harbor tasks in a directory and say, before anything runs, which are broken.

A task that Harbor cannot load would abort a whole job, so each one is loaded
here first, with Harbor's own `Task` model; a broken task is reported with its
name and the problem, and the others still run.
"""

from __future__ import annotations

import fnmatch
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

from harbor.models.task.task import Task
from pydantic import ValidationError

TASK_MARKERS = ("task.toml", "instruction.md", "tests", "environment")


@dataclass(frozen=True)
class TaskRef:
    name: str  # the task's directory name: unique within a run, what users type
    path: Path
    problem: str | None = None  # why it cannot run; None when it can

    @property
    def valid(self) -> bool:
        return self.problem is None


def discover(tasks_dir: Path) -> list[TaskRef]:
    """Every task under `tasks_dir` (or `tasks_dir` itself, if it is one), checked."""
    tasks_dir = tasks_dir.resolve()
    if not tasks_dir.is_dir():
        raise FileNotFoundError(f"{tasks_dir} is not a directory of Harbor tasks")
    if (tasks_dir / "task.toml").exists():
        candidates = [tasks_dir]
    else:
        candidates = [
            child
            for child in sorted(tasks_dir.iterdir())
            if child.is_dir() and any((child / m).exists() for m in TASK_MARKERS)
        ]
    return [TaskRef(path.name, path, problem_with(path)) for path in candidates]


def select(
    tasks: list[TaskRef],
    include: list[str] | None = None,
    exclude: list[str] | None = None,
    limit: int | None = None,
) -> list[TaskRef]:
    """Filter by name globs (`-i`, `-x`), then keep the first `limit`."""
    chosen = [
        task
        for task in tasks
        if (not include or any(fnmatch.fnmatch(task.name, p) for p in include))
        and not any(fnmatch.fnmatch(task.name, p) for p in exclude or [])
    ]
    return chosen[:limit] if limit is not None else chosen


def problem_with(path: Path) -> str | None:
    """Why Harbor could not run the task at `path`, in one sentence; None if it can."""
    config = path / "task.toml"
    if not config.exists():
        return "task.toml is missing"
    try:
        tomllib.loads(config.read_text())
    except tomllib.TOMLDecodeError as error:
        return f"task.toml is not valid TOML: {error}"
    try:
        Task(path)  # Harbor's own checks: config schema, instruction, tests, steps
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"task.toml: {where}: {first['msg']}" + (
            f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        )
    except (OSError, ValueError, RuntimeError) as error:
        return str(error).replace(str(path.resolve()), path.name)  # Harbor resolves the path
    return None


def with_sandbox_problems(tasks: list[TaskRef]) -> list[TaskRef]:
    """Mark the tasks whose Dockerfile or Compose file the sandbox cannot honour
    (multi-stage, COPY --from, a privileged service, ...): they fail here, with the line or
    the key, before any trial starts."""
    # Imported here: Harbor's environment machinery doubles the CLI's start-up time.
    from autoagent.sandbox import compose_file
    from autoagent.sandbox.roots import SandboxUnavailableError, read_plan, read_project

    marked = []
    for task in tasks:
        if task.valid:
            environment = task.path / "environment"
            try:
                if compose_file.find(environment):  # its variables come from task.toml's env
                    read_project(environment, Task(task.path).config.environment.env)
                read_plan(environment)
            except SandboxUnavailableError as error:
                problem = str(error).replace(str(task.path.resolve()), task.name)
                task = replace(task, problem=f"the sandbox cannot run it: {problem}")
        marked.append(task)
    return marked
