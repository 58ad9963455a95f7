"""The `autoagent` command."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from autoagent import display
from autoagent.evaluate import check as check_tasks
from autoagent.evaluate import evaluate
from autoagent.evaluate.job import JobFailed
from autoagent.evaluate.tasks import discover, select

EXAMPLE_TASKS = Path(__file__).parent / "examples" / "tasks"

app = typer.Typer(
    help="Improve an AI agent harness on your own tasks, unattended, with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

TasksDir = Annotated[
    Path | None,
    typer.Argument(
        help="A directory of Harbor tasks (or one task). Default: the bundled examples.",
        show_default=False,
    ),
]
Concurrency = Annotated[int, typer.Option("-n", "--concurrency", help="Trials at once.")]
Environment = Annotated[
    str,
    typer.Option(
        "--env", "-e",
        help="`sandbox` (Docker-free, default), any Harbor environment (docker, daytona, "
        "modal, e2b, ...) or an import path module:Class.",
    ),
]  # fmt: skip
EnvKwargs = Annotated[
    list[str] | None,
    typer.Option("--ek", help="Environment option key=value (repeatable), e.g. build_failure=warn."),
]
Include = Annotated[list[str] | None, typer.Option("--include", "-i", help="Task name glob (repeatable).")]
Exclude = Annotated[list[str] | None, typer.Option("--exclude", "-x", help="Task name glob to skip.")]
Limit = Annotated[int | None, typer.Option("--n-tasks", "-l", help="Run at most this many tasks.")]
JsonOut = Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON here.")]
JobsDir = Annotated[Path, typer.Option("--jobs-dir", help="Where Harbor's job folders go.")]


def _key_values(pairs: list[str] | None, option: str) -> dict:
    parsed = {}
    for pair in pairs or []:
        key, equals, value = pair.partition("=")
        if not equals or not key:
            raise typer.BadParameter(f"expected key=value, got {pair!r}", param_hint=option)
        try:
            parsed[key] = json.loads(value)  # numbers, booleans, lists
        except json.JSONDecodeError:
            parsed[key] = value
    return parsed


def _tasks_dir(tasks_dir: Path | None) -> Path:
    if tasks_dir is not None:
        return tasks_dir
    display.console.print(f"Using the bundled example tasks in {EXAMPLE_TASKS}")
    return EXAMPLE_TASKS


def _count_trials(tasks_dir: Path, include, exclude, limit, attempts: int) -> int:
    try:
        return len(select(discover(tasks_dir), include, exclude, limit)) * attempts
    except FileNotFoundError as error:
        display.errors.print(f"[red]{error}[/]")
        raise typer.Exit(2) from None


def _write_json(path: Path | None, data: object) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2))
        display.console.print(f"Wrote {path}")


@app.command("eval")
def eval_command(
    tasks_dir: TasksDir = None,
    agent: Annotated[
        str,
        typer.Option(
            "--agent", "-a",
            help="`oracle`, `nop`, any Harbor agent name, or an import path such as agent:AutoAgent.",
        ),
    ] = "oracle",  # fmt: skip
    model: Annotated[str | None, typer.Option("--model", "-m", help="Model for the agent.")] = None,
    agent_kwarg: Annotated[
        list[str] | None, typer.Option("--ak", help="Agent option key=value (repeatable).")
    ] = None,
    n_concurrent: Concurrency = 4,
    attempts: Annotated[int, typer.Option("-k", "--attempts", help="Attempts per task.")] = 1,
    environment: Environment = "sandbox",
    ek: EnvKwargs = None,
    include: Include = None,
    exclude: Exclude = None,
    limit: Limit = None,
    retries: Annotated[
        int, typer.Option("--retries", help="Rounds of reruns for infrastructure failures.")
    ] = 2,
    json_out: JsonOut = None,
    jobs_dir: JobsDir = Path(".autoagent/jobs"),
) -> None:
    """Run an agent on tasks and score it: sum of rewards / trials, errors count 0."""
    tasks_dir = _tasks_dir(tasks_dir)
    total = _count_trials(tasks_dir, include, exclude, limit, attempts)
    with display.trial_progress(total, f"eval {agent}") as on_event:
        try:
            result = asyncio.run(
                evaluate(
                    tasks_dir, agent, model=model,
                    agent_kwargs=_key_values(agent_kwarg, "--ak"),
                    environment=environment, environment_kwargs=_key_values(ek, "--ek"),
                    n_concurrent=n_concurrent, attempts=attempts,
                    include=include, exclude=exclude, limit=limit,
                    jobs_dir=jobs_dir, infra_retries=retries, on_event=on_event,
                )  # fmt: skip
            )
        except (JobFailed, ValueError) as error:
            display.errors.print(f"[red]{error}[/]")
            raise typer.Exit(1) from None
    display.console.print(display.eval_table(result, f"{agent} on {tasks_dir}"))
    display.console.print(display.eval_summary(result))
    display.console.print(f"Trials and traces: {', '.join(result.job_dirs)}")
    _write_json(json_out, result.to_json())


@app.command()
def check(
    tasks_dir: TasksDir = None,
    n_concurrent: Concurrency = 4,
    environment: Environment = "sandbox",
    ek: EnvKwargs = None,
    include: Include = None,
    exclude: Exclude = None,
    limit: Limit = None,
    json_out: JsonOut = None,
    jobs_dir: JobsDir = Path(".autoagent/jobs"),
) -> None:
    """Is every task sound? Its reference solution must score 1, doing nothing 0."""
    tasks_dir = _tasks_dir(tasks_dir)
    total = 2 * _count_trials(tasks_dir, include, exclude, limit, 1)
    with display.trial_progress(total, "check (oracle, then nothing)") as on_event:
        try:
            findings = asyncio.run(
                check_tasks(
                    tasks_dir, include=include, exclude=exclude, limit=limit,
                    environment=environment, environment_kwargs=_key_values(ek, "--ek"),
                    n_concurrent=n_concurrent, jobs_dir=jobs_dir, on_event=on_event,
                )  # fmt: skip
            )
        except (JobFailed, ValueError) as error:
            display.errors.print(f"[red]{error}[/]")
            raise typer.Exit(1) from None
    display.console.print(display.check_table(findings))
    unsound = [f for f in findings if not f.sound]
    _write_json(json_out, [f.to_json() for f in findings])
    if unsound:
        display.console.print(f"[red]{len(unsound)} of {len(findings)} tasks are unsound.[/]")
        raise typer.Exit(1)
    display.console.print(f"[green]All {len(findings)} tasks are sound.[/]")
