"""`autoagent doctor`: can this machine run the loop? Each check says how to fix what fails.

What a user would otherwise find out one failure at a time: root and bubblewrap for the
sandbox, a sandbox that really starts, cgroups for the tasks' CPU and memory limits, git,
the Python that tasks' tests run with, the models' credentials, LibreOffice where tasks
need it.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path

from autoagent.sandbox import image
from autoagent.sandbox.cgroups import Cgroup
from autoagent.sandbox.environment import default_state_dir, host_problem
from autoagent.sandbox.jail import Jail


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    required: bool = True  # a failed check that is not required is a warning


def sandbox_checks() -> list[Check]:
    problem = host_problem()
    checks = [Check("root, bubblewrap, util-linux, passt", problem is None, problem or "present", 
                    "" if problem is None else "apt-get update && apt-get install -y bubblewrap util-linux passt")]  # fmt: skip
    if problem is None:
        checks.append(_sandbox_starts())
        checks.append(_cgroups())
    return checks


def _sandbox_starts() -> Check:
    async def probe() -> str:
        state = default_state_dir()
        (state / "doctor").mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=state / "doctor"))
        jail = Jail(name=f"doctor-{uuid.uuid4().hex[:8]}", directory=scratch / "scratch",
                    overlays=image.overlays(state, None, scratch / "upper"))  # fmt: skip
        try:
            await jail.start()
            result = await jail.run(["sh", "-c", "echo ok > /tmp/probe && cat /tmp/probe"], timeout=30)
            return result.stdout.strip() if result.return_code == 0 else result.stderr.strip()
        finally:
            await jail.stop()
            shutil.rmtree(scratch, ignore_errors=True)

    try:
        said = asyncio.run(probe())
    except Exception as error:  # whatever stops it is what the user needs to read
        said = f"{type(error).__name__}: {error}"
    return Check("the sandbox starts and runs a command", said == "ok", "yes" if said == "ok" else said,
                 "see the error; the sandbox needs root, overlayfs and namespaces (not an unprivileged "
                 "container), and its state dir on a filesystem that can hold an overlay's upper dir "
                 "(not overlayfs itself): set AUTOAGENT_SANDBOX_DIR to one (ext4, xfs, tmpfs)")  # fmt: skip


def _cgroups() -> Check:
    group = Cgroup.create(f"doctor-{uuid.uuid4().hex[:8]}", 1.0, 256)
    try:
        missing = list(group.unenforced)
    finally:
        group.remove()
    return Check("cgroups for the tasks' CPU and memory limits", not missing,
                 "enforced" if not missing else "cannot set: " + ", ".join(missing),
                 "run as root on a host with cgroup v2 (or v1) controllers delegated; trials then run "
                 "without their limits and timing-sensitive tasks may flake", required=False)  # fmt: skip


def tool_checks() -> list[Check]:
    git = shutil.which("git")
    checks = [Check("git", git is not None, _version([git, "--version"]) if git else "missing",
                    "apt-get install -y git")]  # fmt: skip
    python = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin")
    if python is None:
        checks.append(Check("the Python that tasks' tests use (host python3)", False, "missing",
                            "apt-get install -y python3 python3-venv"))  # fmt: skip
    else:
        venv = subprocess.run([python, "-c", "import ensurepip, venv"], capture_output=True).returncode == 0
        checks.append(Check("the Python that tasks' tests use (host python3)", venv,
                            _version([python, "--version"]) + ("" if venv else ", without venv"),
                            "" if venv else "apt-get install -y python3-venv"))  # fmt: skip
    return checks


def model_checks(models: dict[str, str | None], api_bases: dict[str, str | None]) -> list[Check]:
    """Credentials of each configured model, read from the environment (no call is made)."""
    from autoagent import llm

    checks = []
    for role, model in models.items():
        if not model:
            continue
        if problem := llm.model_problem(model, api_bases.get(role)):
            checks.append(Check(f"{role} model {model}", False, problem, "fix the model name in autoagent.toml"))
            continue
        if model.startswith("scripted/"):
            checks.append(Check(f"{role} model {model}", True, "scripted (offline, not a real model)"))
            continue
        missing = [] if api_bases.get(role) else llm._litellm().validate_environment(model).get("missing_keys", [])
        checks.append(Check(f"{role} model {model}", not missing,
                            "credentials found" if not missing else f"{', '.join(missing)} not set",
                            f"export {missing[0]}=..." if missing else ""))  # fmt: skip
    return checks


SPREADSHEET_TOOLS = re.compile(r"\b(libreoffice|soffice)\b")


def libreoffice_check(tasks_dir: Path | None) -> list[Check]:
    """Tasks whose verifier recalculates spreadsheets need LibreOffice on the host."""
    if tasks_dir is None or not tasks_dir.is_dir():
        return []
    needing = sorted({
        path.relative_to(tasks_dir).parts[0]
        for pattern in ("*/tests/*", "*/environment/Dockerfile")
        for path in tasks_dir.glob(pattern)
        if path.is_file() and path.stat().st_size < 2**20
        and SPREADSHEET_TOOLS.search(path.read_text(errors="replace"))
    })  # fmt: skip
    if not needing:
        return []
    found = shutil.which("soffice") or shutil.which("libreoffice")
    names = ", ".join(needing[:3]) + (f" and {len(needing) - 3} more" if len(needing) > 3 else "")
    return [Check(f"LibreOffice (tasks {names} use it)", found is not None, found or "missing",
                  "apt-get install -y --no-install-recommends libreoffice-calc")]  # fmt: skip


def _version(argv: list[str]) -> str:
    completed = subprocess.run(argv, capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})
    return (completed.stdout or completed.stderr).strip().splitlines()[0] if completed.returncode == 0 else "broken"
