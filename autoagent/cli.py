"""The `autoagent` command."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from autoagent import display, preflight
from autoagent import workspace as workspaces
from autoagent.config import ConfigError, check_models
from autoagent.evaluate import check as check_tasks
from autoagent.evaluate import evaluate
from autoagent.evaluate.job import JobFailed, environment_config
from autoagent.evaluate.infra import ConfigurationFailed
from autoagent.evaluate.pool import TrialPool
from autoagent.evaluate.tasks import discover, select
from autoagent.faults import ModelConfigurationError, ModelUnavailableError
from autoagent.guard import import_problem
from autoagent.harness_box.box import HarnessBoxError
from autoagent.scripted import DEMO_META
from autoagent.workspace import AGENT_IMPORT_PATH, EXAMPLE_TASKS, Workspace, WorkspaceError

class Command(typer.core.TyperCommand):
    """Help that reads like a manual: a flag shows no `<bool>`, a value its kind in capitals."""

    LABELS = {"str": "TEXT", "int": "N", "float": "NUMBER", "Path": "PATH"}

    def get_params(self, ctx):
        params = super().get_params(ctx)
        for param in params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
            elif param.metavar is None and isinstance(param, typer.core.TyperOption):
                kind = param.type_descriptor.annotation
                name = getattr(kind, "__name__", "")
                if getattr(kind, "__origin__", None) is list:
                    name = getattr(kind.__args__[0], "__name__", "")
                param.metavar = self.LABELS.get(name, name.upper() or "VALUE")
        return params


app = typer.Typer(
    help="Improve an AI agent harness on your own tasks, unattended, with evidence.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
command = functools.partial(app.command, cls=Command)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        display.console.print(f"autoagent {version('autoagent')} (harbor {version('harbor')})")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool | None,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Improve an AI agent harness on your own tasks, unattended, with evidence."""
    display.fit_output()

TasksDir = Annotated[
    Path | None,
    typer.Argument(
        help="A directory of Harbor tasks (or one task). Default: the workspace's tasks, "
        "or the bundled examples outside a workspace.",
        show_default=False,
    ),
]
Concurrency = Annotated[int | None, typer.Option("-n", "--concurrency", help="Trials at once \\[4].")]
Environment = Annotated[
    str | None,
    typer.Option(
        "--env", "-e",
        help="`sandbox` (Docker-free, the default), any Harbor environment (docker, daytona, "
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


def _positive_rate(value: float | None) -> float | None:
    if value is not None and value <= 0:
        raise typer.BadParameter("starts per second, a positive number")
    return value


StartRate = Annotated[
    float | None,
    typer.Option("--start-rate", callback=_positive_rate,
                 help="Sandbox starts per second at most (a cloud provider's quota) \\[no limit]."),
]  # fmt: skip
JsonOut = Annotated[Path | None, typer.Option("--json", help="Also write the results as JSON here.")]
JobsDir = Annotated[
    Path | None, typer.Option("--jobs-dir", help="Where Harbor's job folders go \\[.autoagent/jobs].")
]


def fail(message: str, code: int = 1) -> typer.Exit:
    display.errors.print(f"[red]{escape(message)}[/]")
    return typer.Exit(code)


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


@dataclass
class Plan:
    """What an `eval` or `check` will run: flags first, then autoagent.toml, then defaults."""

    tasks_dir: Path
    cwd: Path
    jobs_dir: Path
    environment: str
    environment_kwargs: dict
    n_concurrent: int
    include: list[str] | None
    exclude: list[str] | None
    workspace: Workspace | None


def _plan(tasks_dir, environment, ek, n_concurrent, include, exclude, jobs_dir) -> Plan:
    workspace = Workspace.find()
    config = None
    if workspace is not None:
        try:
            config = workspace.config
        except ConfigError as error:
            raise fail(str(error), 2) from None
    if tasks_dir is None:
        if workspace is not None:
            try:
                tasks_dir = workspace.ensure_tasks()
            except WorkspaceError as error:
                raise fail(str(error), 2) from None
        else:
            display.console.print(f"Using the bundled example tasks in {EXAMPLE_TASKS}")
            tasks_dir = EXAMPLE_TASKS
    if not tasks_dir.is_dir():
        raise fail(f"{tasks_dir} is not a directory of Harbor tasks", 2)
    run = config.run if config else None
    return Plan(
        tasks_dir=tasks_dir.resolve(),
        cwd=workspace.root if workspace else Path.cwd(),
        jobs_dir=(jobs_dir or (workspace.jobs_dir if workspace else Path(".autoagent/jobs"))).absolute(),
        environment=environment or (run.environment if run else "sandbox"),
        environment_kwargs={**(run.environment_kwargs if run else {}), **_key_values(ek, "--ek")},
        n_concurrent=n_concurrent or (run.concurrency if run else 4),
        include=include or (config.tasks.include if config else None),
        exclude=exclude or (config.tasks.exclude if config else None),
        workspace=workspace,
    )


def _without_test_split(plan: Plan, config) -> Plan:
    """The sealed test split is `autoagent test`'s alone: eval in a workspace leaves it out."""
    from autoagent.splits import choose

    try:
        _, splits = choose(plan.tasks_dir, plan.include, plan.exclude, config.splits.model_dump())
    except ValueError as error:
        raise fail(f"{plan.workspace.root / 'autoagent.toml'}: {error}", 2) from None
    if not splits.test:
        return plan
    count = f"{len(splits.test)} task{'s' * (len(splits.test) != 1)}"
    display.console.print(f"Leaving out the sealed test split ({count}): `autoagent test` scores it.")
    return dataclasses.replace(plan, exclude=[*(plan.exclude or []), *splits.test])


def _count_trials(plan: Plan, limit: int | None, attempts: int) -> int:
    try:
        return len(select(discover(plan.tasks_dir), plan.include, plan.exclude, limit)) * attempts
    except FileNotFoundError as error:
        raise fail(str(error), 2) from None


def _interrupted(tally: display.Tally, jobs_dir: Path) -> typer.Exit:
    """Ctrl-C: what finished, and where the partial trials are (Harbor cancelled the rest)."""
    display.errors.print(f"{tally.interrupted()} Partial trials and traces: {jobs_dir}", highlight=False)
    return typer.Exit(130)


def agent_problem(agent: str, cwd: Path) -> str | None:
    """Why an import path `module:Class` cannot name an agent, found without running it."""
    import importlib.util
    import sys

    module, colon, name = agent.partition(":")
    if not colon:
        return None  # a Harbor agent name: Harbor says which exist
    if not module or not name:
        return "an import path is module:Class, e.g. agent:AutoAgent"
    sys.path.insert(0, str(cwd))
    try:
        found = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        found = None
    finally:
        sys.path.remove(str(cwd))
    if found is None:
        return f"no module named {module!r} in {cwd} or the installed packages"
    return None


def _preflight(endpoints: list[preflight.Endpoint], config=None) -> None:
    """The model settings of autoagent.toml for every process; then one tiny call per model,
    so that a missing key or an unknown model stops us now, not after a night of failed trials."""
    if config is not None:
        os.environ.update(preflight.environment(config))
    try:
        asyncio.run(preflight.check(endpoints))
    except (ModelConfigurationError, ModelUnavailableError) as error:
        raise fail(str(error)) from None


def _write_json(path: Path | None, data: object) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=2))
        display.console.print(f"Wrote {path}")


@command()
def init(
    directory: Annotated[Path, typer.Argument(help="Where to create the workspace.")],
    tasks: Annotated[
        str | None,
        typer.Option(
            "--tasks", "-t",
            help="A directory of Harbor tasks (or one task) to copy in, or a Harbor dataset "
            "name@version to download. Default: the bundled examples.",
        ),
    ] = None,
    link: Annotated[bool, typer.Option("--link", help="Reference the tasks where they are.")] = False,
    model: Annotated[str | None, typer.Option("--model", "-m", help="The task agent's model.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing workspace.")] = False,
) -> None:
    """Create a workspace: agent.py, program.md, autoagent.toml, tasks/, a git baseline."""
    from autoagent.llm import missing_keys, model_problem  # LiteLLM is slow to import: only when needed

    if model and (problem := model_problem(model)):
        raise fail(f"--model: {problem}", 2)
    source = Path(tasks).expanduser() if tasks else None
    if source is not None and source.is_dir() and not discover(source):
        raise fail(f"--tasks {tasks}: no Harbor tasks there (a task is a directory with task.toml, "
                   "instruction.md, environment/ and tests/). Nothing was created.", 2)  # fmt: skip
    try:
        workspace = workspaces.init(directory, tasks, link=link, force=force, model=model)
    except (WorkspaceError, ConfigError) as error:
        raise fail(str(error), 2) from None
    count = len(discover(workspace.tasks_dir))
    display.console.print(
        f"Created the workspace {workspace.root} with {count} task{'s' * (count != 1)} in "
        f"{workspace.tasks_dir}.\n"
        f"Next: cd {directory} && autoagent check && autoagent eval"
    )
    chosen = workspace.config.agent.model
    if missing := missing_keys(chosen):
        display.errors.print(
            f"[yellow]Warning: {escape(' or '.join(missing))} is not set, and the model {escape(chosen)} needs it: "
            f"export {missing[0]}=... before `autoagent eval`. (For a local OpenAI-compatible server, set "
            f"{escape('[agent] api_base')} in autoagent.toml instead: no key is needed then.)[/]"
        )


@command("eval")
def eval_command(
    tasks_dir: TasksDir = None,
    agent: Annotated[
        str | None,
        typer.Option(
            "--agent", "-a",
            help="`oracle`, `nop`, any Harbor agent name, or an import path. Default: the "
            f"workspace's harness ({AGENT_IMPORT_PATH}), or oracle outside a workspace.",
        ),
    ] = None,  # fmt: skip
    model: Annotated[
        str | None, typer.Option("--model", "-m", help="Model for the agent \\[autoagent.toml].")
    ] = None,
    agent_kwarg: Annotated[
        list[str] | None, typer.Option("--ak", help="Agent option key=value (repeatable).")
    ] = None,
    n_concurrent: Concurrency = None,
    attempts: Annotated[int | None, typer.Option("-k", "--attempts", help="Attempts per task \\[1].")] = None,
    environment: Environment = None,
    ek: EnvKwargs = None,
    include: Include = None,
    exclude: Exclude = None,
    limit: Limit = None,
    retries: Annotated[
        int, typer.Option("--retries", help="Rounds of reruns for infrastructure failures.")
    ] = 2,
    start_rate: StartRate = None,
    json_out: JsonOut = None,
    jobs_dir: JobsDir = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress while it runs.")] = False,
) -> None:
    """Run an agent on tasks and score it: sum of rewards / trials, errors count 0."""
    plan = _plan(tasks_dir, environment, ek, n_concurrent, include, exclude, jobs_dir)
    config = plan.workspace.config if plan.workspace else None
    agent = agent or (AGENT_IMPORT_PATH if plan.workspace else "oracle")
    agent_kwargs = _key_values(agent_kwarg, "--ak")
    if plan.workspace and agent == AGENT_IMPORT_PATH:
        model = model or config.agent.model
        if config.agent.api_base:
            agent_kwargs.setdefault("api_base", config.agent.api_base)
        try:
            problem = import_problem(plan.workspace.harness)
        except HarnessBoxError as error:
            raise fail(str(error)) from None
        if problem:
            raise fail(problem)
    from autoagent.llm import model_problem  # LiteLLM is slow to import: only when needed

    if model and (problem := model_problem(model, agent_kwargs.get("api_base"))):
        raise fail(f"--model: {problem}")
    if model and agent == AGENT_IMPORT_PATH:
        _preflight([preflight.Endpoint("task", model, agent_kwargs.get("api_base"))], config)
    attempts = attempts or (config.run.attempts if config else 1)
    if plan.workspace and tasks_dir is None and not include:
        plan = _without_test_split(plan, config)
    if problem := agent_problem(agent, plan.cwd):
        raise fail(f"--agent {agent}: {problem}", 2)
    module, _, name = agent.partition(":")
    if name and agent != AGENT_IMPORT_PATH and (plan.cwd / f"{module}.py").is_file():
        try:
            problem = import_problem(plan.cwd / f"{module}.py", name, boundary=False)  # as a trial imports it
        except HarnessBoxError as error:
            raise fail(str(error)) from None
        if problem:
            raise fail(f"--agent {agent}: {problem}", 2)
    total = _count_trials(plan, limit, attempts)
    start_rate = start_rate or (config.run.start_rate if config else None)
    pool = TrialPool(plan.n_concurrent, start_rate) if start_rate else None  # else Harbor's n_concurrent
    with display.trial_progress(total, f"eval {agent}", quiet) as on_event:
        try:
            result = asyncio.run(
                evaluate(
                    plan.tasks_dir, agent, model=model, agent_kwargs=agent_kwargs,
                    environment=plan.environment, environment_kwargs=plan.environment_kwargs,
                    n_concurrent=plan.n_concurrent, attempts=attempts,
                    include=plan.include, exclude=plan.exclude, limit=limit,
                    jobs_dir=plan.jobs_dir, infra_retries=retries, on_event=on_event, cwd=plan.cwd,
                    pool=pool,
                )  # fmt: skip
            )
        except (JobFailed, ValueError) as error:
            raise fail(str(error)) from None
        except KeyboardInterrupt:
            raise _interrupted(on_event.tally, plan.jobs_dir) from None
    display.console.print(display.eval_table(result, f"{agent} on {plan.tasks_dir}"))
    display.console.print(display.eval_summary(result))
    display.console.print(f"Trials and traces: {', '.join(result.job_dirs)}")
    _write_json(json_out, result.to_json())


@command()
def check(
    tasks_dir: TasksDir = None,
    n_concurrent: Concurrency = None,
    environment: Environment = None,
    ek: EnvKwargs = None,
    include: Include = None,
    exclude: Exclude = None,
    limit: Limit = None,
    json_out: JsonOut = None,
    jobs_dir: JobsDir = None,
) -> None:
    """Is every task sound? Its reference solution must score 1, doing nothing 0."""
    plan = _plan(tasks_dir, environment, ek, n_concurrent, include, exclude, jobs_dir)
    total = 2 * _count_trials(plan, limit, 1)
    with display.trial_progress(total, "check (oracle, then nop)") as on_event:
        try:
            findings = asyncio.run(
                check_tasks(
                    plan.tasks_dir, include=plan.include, exclude=plan.exclude, limit=limit,
                    environment=plan.environment, environment_kwargs=plan.environment_kwargs,
                    n_concurrent=plan.n_concurrent, jobs_dir=plan.jobs_dir, on_event=on_event,
                    cwd=plan.cwd,
                )  # fmt: skip
            )
        except (JobFailed, ValueError) as error:
            raise fail(str(error)) from None
        except KeyboardInterrupt:
            raise _interrupted(on_event.tally, plan.jobs_dir) from None
    display.console.print(display.check_table(findings))
    unsound = [f for f in findings if not f.sound]
    _write_json(json_out, [f.to_json() for f in findings])
    if unsound:
        display.console.print(f"[red]{len(unsound)} of {len(findings)} tasks are unsound.[/]")
        raise typer.Exit(1)
    display.console.print(f"[green]All {len(findings)} tasks are sound.[/]")


def _workspace(*, models: bool = False) -> Workspace:
    """The workspace here, its autoagent.toml checked (and its models, for a command that uses them)."""
    workspace = Workspace.find()
    if workspace is None:
        raise fail("Not in an AutoAgent workspace (no autoagent.toml here or above). "
                   "Create one with: autoagent init DIR", 2)  # fmt: skip
    try:
        config = workspace.config
        if models:
            check_models(workspace.root / "autoagent.toml", config)
    except ConfigError as error:
        raise fail(str(error), 2) from None
    return workspace


def _run_loop(workspace: Workspace, settings, mode: str = "plain") -> str:
    """Run the loop; the first Ctrl-C stops it cleanly, a second one at once."""
    from autoagent.loop import Loop

    with display.run_view(mode) as (report, on_status):
        return asyncio.run(_loop_main(Loop(workspace, settings, report, on_status), report))


async def _loop_main(loop, report) -> str:
    task = asyncio.current_task()

    def on_interrupt() -> None:
        if loop.stop_requested:
            display.errors.print("Aborted.")
            os._exit(130)
        loop.stop_requested = True
        report("Stopping: recording what this run has (Ctrl-C again to abort at once)")
        task.cancel()

    asyncio.get_running_loop().add_signal_handler(signal.SIGINT, on_interrupt)
    return await loop.run()


@command()
def run(
    iterations: Annotated[int | None, typer.Option("--iterations", help="Stop after N proposals, failed ones too.")] = None,
    hours: Annotated[float | None, typer.Option("--hours", help="Stop after this many hours.")] = None,
    budget_usd: Annotated[
        float | None, typer.Option("--budget-usd", help="Stop at this spend (task runs + meta-agent).")
    ] = None,
    meta_model: Annotated[str | None, typer.Option("--meta-model", help="The meta-agent's model.")] = None,
    meta: Annotated[
        str | None,
        typer.Option("--meta", help="The meta-agent: builtin, or claude-code (pip install 'autoagent\\[claude]')."),
    ] = None,
    candidates: Annotated[
        int | None, typer.Option("--candidates", help="Candidates in flight at once, sharing the trials \\[1].")
    ] = None,
    environment: Environment = None,
    ek: EnvKwargs = None,
    n_concurrent: Concurrency = None,
    start_rate: StartRate = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only how the run ended.")] = False,
    plain: Annotated[bool, typer.Option("--plain", help="Log lines only, no live status (CI, files).")] = False,
) -> None:
    """Improve the workspace's harness until a budget is spent or Ctrl-C; resumes after a crash."""
    from autoagent.loop import RunError, Settings
    from autoagent.strategies.budget import Budget

    workspace = _workspace(models=True)
    config = workspace.config
    budget = Budget(
        iterations if iterations is not None else config.budget.iterations,
        hours if hours is not None else config.budget.hours,
        budget_usd if budget_usd is not None else config.budget.usd,
    )
    if budget == Budget():
        display.console.print("No budget set: the run goes on until you press Ctrl-C.")
    backend = meta or config.meta.backend
    if backend not in ("builtin", "claude-code"):
        raise fail(f"--meta {backend}: choose builtin or claude-code", 2)
    if backend == "claude-code":
        from autoagent.meta.claude_code import available

        if problem := available():
            raise fail(problem, 2)
    if candidates is not None and candidates < 1:
        raise fail("--candidates: how many candidates at once, 1 or more", 2)
    settings = Settings.from_workspace(
        workspace, budget=budget, meta_model=meta_model, meta_backend=backend, candidates=candidates,
        environment=environment, concurrency=n_concurrent, start_rate=start_rate,
        environment_kwargs={**config.run.environment_kwargs, **_key_values(ek, "--ek")} if ek else None,
    )  # fmt: skip
    try:
        environment_config(settings.environment, settings.environment_kwargs)
    except ValueError as error:
        raise fail(str(error), 2) from None
    _check_models(settings, config, backend)
    mode = "quiet" if quiet else "plain" if plain or not display.console.is_terminal else "live"
    try:
        reason = _run_loop(workspace, settings, mode)
    except (RunError, ModelConfigurationError, HarnessBoxError) as error:
        raise fail(str(error)) from None
    display.console.print(f"Stopped: {reason}. The ledger is {workspace.root / 'results.tsv'}")


def _check_models(settings, config, backend: str) -> None:
    """Before the baseline: a meta-agent that can propose, money that can be counted, models
    that answer."""
    from autoagent.llm import has_price

    endpoints = [preflight.Endpoint("task", settings.model, settings.api_base)]
    if backend == "builtin":  # Claude Code signs in and prices its calls itself
        meta_model, meta_base = settings.meta_endpoint()
        if problem := preflight.meta_problem(meta_model):
            raise fail(problem, 2)
        endpoints.append(preflight.Endpoint("meta", meta_model, meta_base))
    os.environ.update(preflight.environment(config))
    if problem := preflight.budget_problem(endpoints, settings.budget.usd):
        raise fail(problem, 2)
    if backend == "builtin" and not has_price(endpoints[-1].model):  # said, never silently inactive
        display.console.print(f"[meta] max_usd does not apply: {endpoints[-1].model} has no price (set [meta] "
                              "input_usd_per_mtok and output_usd_per_mtok); max_turns and max_minutes do.",
                              markup=False)  # fmt: skip
    _preflight(endpoints)


DEMO_NOTICE = (
    "[bold yellow]This demo runs the whole loop offline with SCRIPTED models:[/] the task agent "
    "and the meta-agent replay bundled scripts (autoagent/examples/scripts). What follows shows "
    "the machinery working; [bold]the figures are not a measure of any real model.[/]"
)


@command()
def demo(
    directory: Annotated[Path, typer.Argument(help="Where to create the demo workspace.")] = Path(
        "autoagent-demo"
    ),
    iterations: Annotated[int, typer.Option("--iterations", help="Experiments after the baseline.")] = 3,
) -> None:
    """The loop end to end on the bundled example tasks, with scripted models; no key needed."""
    from autoagent.loop import RunError, Settings
    from autoagent.strategies.budget import Budget

    display.console.print(DEMO_NOTICE)
    if directory.exists() and any(directory.iterdir()):
        raise fail(f"{directory} already exists; remove it or name another directory", 2)
    workspace = workspaces.init(directory, model="scripted/examples")
    display.console.print(f"Workspace: {workspace.root} (tasks: {', '.join(t.name for t in discover(workspace.tasks_dir))})")
    settings = Settings.from_workspace(
        workspace, meta_model=DEMO_META, budget=Budget(iterations=iterations),
        retry_wait_sec=1.0,
    )  # fmt: skip
    try:
        _run_loop(workspace, settings)
    except (RunError, HarnessBoxError) as error:
        raise fail(str(error)) from None
    display.console.print(f"\n[bold]{workspace.root / 'results.tsv'}[/]")
    display.console.print((workspace.root / "results.tsv").read_text(), highlight=False)
    display.console.print(DEMO_NOTICE)
    display.console.print(
        "With a real model: autoagent init my-agent -m anthropic/claude-sonnet-4-5 && "
        "cd my-agent && autoagent run --hours 8 --budget-usd 50"
    )


@command("test")
def test_command(
    force: Annotated[bool, typer.Option("--force", help="Score a harness that was scored already.")] = False,
    json_out: JsonOut = None,
) -> None:
    """Score the workspace's harness on the sealed test split: once per harness."""
    from autoagent import sealed
    from autoagent.splits import choose

    workspace = _workspace(models=True)
    config = workspace.config
    try:
        tasks, splits = choose(workspace.ensure_tasks(), config.tasks.include, config.tasks.exclude,
                               config.splits.model_dump())  # fmt: skip
    except WorkspaceError as error:
        raise fail(str(error), 2) from None
    except ValueError as error:
        raise fail(f"{workspace.root / 'autoagent.toml'}: {error}", 2) from None
    if not splits.test:
        raise fail("No test split: set [splits] test (names) or test_fraction in autoagent.toml.", 2)
    chosen = [t for t in tasks if t.name in splits.test]
    _preflight([preflight.Endpoint("task", config.agent.model, config.agent.api_base)], config)
    with display.trial_progress(len(chosen) * config.run.attempts, "test split") as on_event:
        try:
            result = asyncio.run(sealed.score(workspace, chosen, force=force, on_event=on_event))
        except (sealed.Refused, ConfigurationFailed) as error:
            raise fail(str(error)) from None
    display.console.print(display.eval_table(result, "the sealed test split"))
    display.console.print(display.eval_summary(result))
    _write_json(json_out, result.to_json())


@command()
def report(
    open_it: Annotated[bool, typer.Option("--open", help="Open the report in a browser.")] = False,
) -> None:
    """Write an HTML report of the workspace's runs (and the progress chart as a PNG)."""
    from autoagent import report as reports

    workspace = _workspace()
    page, png = reports.write(workspace.root)
    display.console.print(f"Wrote {page}" + (f" and {png}" if png else ""))
    if open_it:
        import webbrowser

        if not webbrowser.open(page.as_uri()):
            display.errors.print(f"No browser could be opened here (no display?): open {page} "
                                 "on a machine with one, e.g. after copying it.")  # fmt: skip


@command()
def doctor() -> None:
    """Can this machine run AutoAgent? The sandbox, cgroups, git, Python, models' keys, tools."""
    from autoagent import doctor as doctors

    workspace = Workspace.find()
    checks = doctors.sandbox_checks() + doctors.tool_checks()
    if workspace is not None:
        try:
            config = workspace.config
        except ConfigError as error:
            raise fail(str(error), 2) from None
        checks += doctors.model_checks({"task agent": config.agent.model, "meta-agent": config.meta.model},
                                       {"task agent": config.agent.api_base, "meta-agent": config.meta.api_base})  # fmt: skip
        checks += doctors.libreoffice_check(workspace.tasks_dir)
    else:
        display.console.print("Not in a workspace: the models and the tasks' tools are checked inside one.")
    display.console.print(display.doctor_table(checks))
    failed = [c for c in checks if not c.ok and c.required]
    if failed:
        raise fail(f"{len(failed)} of {len(checks)} checks failed: fix them as shown, then run autoagent doctor again.")
    display.console.print("[green]Ready.[/]" + (" (with warnings above)" if any(not c.ok for c in checks) else ""))


@command()
def status() -> None:
    """Where the workspace's runs stand: also while one is going on."""
    from autoagent.ledger import Ledger
    from autoagent.live import LiveStatus
    from autoagent.spend import Meter

    workspace = _workspace()
    ledger = Ledger(workspace.root)
    stops = ledger.events("stop")
    meter = Meter(workspace.root / ".autoagent" / "spend.jsonl")
    spent, unknown = meter.by_role()
    for item in display.status_view(workspace.root, ledger.experiments(), LiveStatus.load(workspace.root),
                                    stops[-1]["reason"] if stops else None, spent, unknown,
                                    ledger.events("meta_failure")):  # fmt: skip
        display.console.print(item)
