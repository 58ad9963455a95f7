"""A workspace: the user's git repo with agent.py, program.md, autoagent.toml and tasks/."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from autoagent import config as settings
from autoagent import scripted

TEMPLATES = Path(__file__).parent / "templates"
EXAMPLE_TASKS = Path(__file__).parent / "examples" / "tasks"
HARNESS = "agent.py"
AGENT_IMPORT_PATH = "agent:AutoAgent"
GITIGNORE = ".autoagent/\njobs/\nresults.tsv\n__pycache__/\n*.pyc\n"


class WorkspaceError(ValueError):
    """Something about the workspace is wrong; the message says what to do."""


@dataclass
class Workspace:
    root: Path

    @classmethod
    def find(cls, start: Path | None = None) -> Workspace | None:
        """The workspace containing `start` (default: the current directory), if any."""
        here = (start or Path.cwd()).resolve()
        for directory in (here, *here.parents):
            if (directory / settings.FILENAME).is_file():
                return cls(directory)
        return None

    @cached_property
    def config(self) -> settings.Config:
        return settings.load(self.root / settings.FILENAME)

    @property
    def harness(self) -> Path:
        return self.root / HARNESS

    @property
    def tasks_dir(self) -> Path:
        return (self.root / self.config.tasks.path).resolve()

    @property
    def jobs_dir(self) -> Path:
        return self.root / ".autoagent" / "jobs"

    def ensure_tasks(self) -> Path:
        """The tasks directory, downloading the configured Harbor dataset if it is missing."""
        if not self.tasks_dir.is_dir() and self.config.tasks.dataset:
            download_dataset(self.config.tasks.dataset, self.tasks_dir)
        return self.tasks_dir


def init(
    directory: Path,
    tasks: str | None = None,
    *,
    link: bool = False,
    force: bool = False,
    model: str | None = None,
) -> Workspace:
    """Scaffold a workspace in `directory` and commit it as the baseline."""
    directory = directory.resolve()
    ours = [settings.FILENAME, HARNESS, "program.md"]
    if not link and not _in_place(directory, tasks):
        ours.append("tasks")  # it would be replaced by the tasks named
    existing = [n for n in ours if (directory / n).exists()]
    if existing and not force:
        raise WorkspaceError(
            f"{directory} already holds {', '.join(existing)}. Use --force to overwrite them, "
            "choose another directory, or pass --tasks DIR/tasks to keep the tasks there."
        )
    created = not directory.exists()
    directory.mkdir(parents=True, exist_ok=True)
    try:
        tasks_setting, dataset = _place_tasks(directory, tasks, link=link)
    except WorkspaceError:
        if created:  # leave nothing half-made behind
            shutil.rmtree(directory, ignore_errors=True)
        raise
    shutil.copyfile(TEMPLATES / "agent.py", directory / HARNESS)
    shutil.copyfile(TEMPLATES / "program.md", directory / "program.md")
    toml = (TEMPLATES / "autoagent.toml").read_text()
    for placeholder, value in {
        "{tasks_path}": json.dumps(tasks_setting),  # a JSON string is a TOML string
        "{dataset}": f"dataset = {json.dumps(dataset)}" if dataset else '# dataset = "terminal-bench@2.0"',  # noqa: E501
        "{model}": json.dumps(model or settings.DEFAULT_MODEL),
        "{meta_model}": _meta_model_line(model),
    }.items():
        toml = toml.replace(placeholder, value)
    (directory / settings.FILENAME).write_text(toml)
    (directory / ".agent").mkdir(exist_ok=True)
    (directory / ".agent" / "README.md").write_text(
        "Files the harness may read: notes, skills, checklists. The meta-agent may edit them.\n"
    )
    (directory / ".gitignore").write_text(GITIGNORE)
    workspace = Workspace(directory)
    workspace.config  # validate what we wrote, before committing it
    _git(directory, "init", "-q")
    ours = [HARNESS, "program.md", settings.FILENAME, ".gitignore", ".agent"]
    _git(directory, "add", "--", *ours, *(["tasks"] if tasks_setting == "tasks" else []))
    _git(directory, "commit", "-q", "--allow-empty", "-m", "AutoAgent baseline")
    return workspace


def _meta_model_line(model: str | None) -> str:
    """A scripted task model cannot propose: its workspace gets the scripted meta-agent of
    `autoagent demo`, so that `autoagent run` works offline as it does."""
    if model and model.startswith(f"{scripted.PROVIDER}/"):
        return f'# A scripted meta-agent for a scripted task agent: offline, not a measure of any model.\nmodel = "{scripted.DEMO_META}"'
    return '# model = "anthropic/claude-sonnet-4-5"'


def _place_tasks(directory: Path, tasks: str | None, *, link: bool) -> tuple[str, str | None]:
    """Copy (or reference) the tasks; returns the `[tasks] path` setting and a dataset name."""
    target = directory / "tasks"
    source = Path(tasks).expanduser() if tasks else EXAMPLE_TASKS
    if tasks and not source.exists():
        if re.fullmatch(r"[\w.-]+(/[\w.-]+)?@[\w.-]+", tasks):  # a Harbor dataset name
            shutil.rmtree(target, ignore_errors=True)  # init refused an existing one without --force
            download_dataset(tasks, target)
            return "tasks", tasks
        raise WorkspaceError(f"--tasks {tasks}: no such directory (nor a Harbor dataset name@version)")
    source = source.resolve()
    if link:
        return str(source), None
    if _in_place(directory, tasks):
        return "tasks", None
    if target.exists():  # init refused it without --force
        shutil.rmtree(target)
    if (source / "task.toml").exists():  # a single task
        shutil.copytree(source, target / source.name, symlinks=True)
    else:
        shutil.copytree(source, target, symlinks=True)
    return "tasks", None


def _in_place(directory: Path, tasks: str | None) -> bool:
    """Whether --tasks names the workspace's own tasks/ directory: used where it is."""
    return tasks is not None and Path(tasks).expanduser().resolve() == (directory / "tasks").resolve()


def download_dataset(name: str, target: Path) -> None:
    """Fetch a Harbor dataset with Harbor's own downloader into `target`."""
    harbor = Path(sys.executable).parent / "harbor"
    with tempfile.TemporaryDirectory() as temporary:
        completed = subprocess.run(
            [str(harbor), "download", name, "--export", "-o", temporary],
            capture_output=True, text=True, env={**os.environ, "HARBOR_TELEMETRY": "0"},
        )  # fmt: skip
        downloaded = [p for p in Path(temporary).iterdir() if p.is_dir()]
        if completed.returncode != 0 or len(downloaded) != 1:
            raise WorkspaceError(
                f"Could not download the Harbor dataset {name} (is its registry reachable from "
                f"here?): {_last_words(completed.stderr or completed.stdout)}"
            )
        shutil.move(str(downloaded[0]), target)


def _last_words(output: str, lines: int = 1) -> str:
    """A tool's last lines of output without colours, cursor moves or spinner frames."""
    plain = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\r", "\n", output)
    kept = [line.strip() for line in plain.splitlines()
            if line.strip() and not re.match(r"^([\u2800-\u28ff|/\\-]\s|[\u2500-\u257f])", line.strip())]  # fmt: skip
    return " ".join(kept[-lines:]) or "no output"


def _git(directory: Path, *args: str) -> str:
    identity = []
    if subprocess.run(["git", "config", "user.email"], cwd=directory, capture_output=True).returncode:
        identity = ["-c", "user.name=AutoAgent", "-c", "user.email=autoagent@localhost"]
    completed = subprocess.run(["git", *identity, *args], cwd=directory, capture_output=True, text=True)
    if completed.returncode != 0:
        raise WorkspaceError(f"git {' '.join(args)} failed in {directory}: {completed.stderr.strip()}")
    return completed.stdout
