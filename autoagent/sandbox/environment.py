"""`Sandbox`: a Harbor environment that needs neither Docker nor a cloud account.

    harbor run -p tasks -a oracle -e autoagent.sandbox:Sandbox

Each trial gets its own root: the task's base image (see `oci.py`), or the host's
userland standing in for it when the image cannot be had, read-only and
copy-on-write, under the task's Dockerfile replayed into a cached layer (see
`image.py`), inside private namespaces (see `jail.py`). A Compose task's other
services run beside it, each in a sandbox of its own sharing its network (see
`services.py`). `/app`, `/logs`, `/tests` and `/solution` are real paths inside, so
nothing is rewritten. Files move in and out by the host, through the sandbox's root
with no link followed out of it (see `transfer.py`): no program or archive of the
sandbox takes part.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import math
import os
import re
import shlex
import shutil
import uuid
from collections.abc import Sequence
from fnmatch import fnmatch
from pathlib import Path, PurePosixPath
from typing import Literal

from harbor.environments.base import BaseEnvironment, ExecResult
from harbor.environments.capabilities import (
    EnvironmentCapabilities,
    EnvironmentResourceCapabilities,
)
from harbor.environments.options import EnvironmentOptions
from harbor.models.task.config import HealthcheckConfig, NetworkMode, NetworkPolicy
from harbor.models.trial.config import ResourceMode
from harbor.models.trial.paths import EnvironmentPaths
from harbor.utils.path_filter import filter_paths_by_patterns
from pydantic import Field

from autoagent.sandbox import image, transfer
from autoagent.sandbox.jail import PIDS_LIMIT, Bind, Jail, JailError
from autoagent.sandbox.roots import (
    Roots,
    SandboxUnavailableError,
    base_env,
    read_plan,
    read_project,
)
from autoagent.sandbox.services import Services, root_of
from autoagent.sandbox.streaming import streamed

# Beside Harbor's result.json: what the sandbox warned about, one line each, for the
# results table, `--json` and the ledger.
WARNINGS_FILE = "environment-warnings.txt"
DIED_FILE = "sandbox-died.txt"  # beside a trial's result: its sandbox died under it (infrastructure)


class SandboxOptions(EnvironmentOptions):
    state_dir: Path | None = Field(
        default=None,
        description="Where cached layers and per-trial roots live "
        "(default: $AUTOAGENT_SANDBOX_DIR or ~/.cache/autoagent/sandbox).",
    )
    build_failure: Literal["fail", "warn"] = Field(
        default="fail",
        description="What a failing Dockerfile RUN line does: fail the trial with the "
        "line and its output, or warn and go on (the host may already have what the "
        "line installs).",
    )
    pids: int = Field(
        default=PIDS_LIMIT,
        ge=16,
        description="How many processes and threads a trial's sandbox may have at once "
        "(a fork bomb in one trial must not starve the others).",
    )
    log_limit_mb: int = Field(
        default=32,
        ge=0,
        description="The most megabytes of the agent's and the verifier's logs "
        "(/logs/agent, /logs/verifier) copied into the jobs directory per trial; "
        "beyond it files are cut, smallest kept whole, and CUT-BY-SANDBOX.txt says what was cut.",
    )
    base: Literal["auto", "image", "host"] = Field(
        default="auto",
        description="What the task's FROM image is: `image` pulls and unpacks the real "
        "image (and fails when it cannot be had), `host` lets the host's userland stand "
        "in for it, `auto` tries the image and falls back to the host with a warning.",
    )
    images: dict[str, str] = Field(
        default_factory=dict,
        description="Images to take from local files instead of a registry: image "
        "reference -> OCI layout directory (optionally PATH:TAG) or `docker save` archive.",
    )
    download_limit_mb: int = Field(
        default=1024,
        ge=0,
        description="The most megabytes one download out of the sandbox writes on the host "
        "(artifacts, files the agent asks for); a sparse file of terabytes costs nothing inside.",
    )
    pass_env: list[str] = Field(
        default_factory=list,
        description="More host environment variables to pass into the sandbox.",
    )


def default_state_dir() -> Path:
    configured = os.environ.get("AUTOAGENT_SANDBOX_DIR")
    if configured:
        return Path(configured)
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "autoagent" / "sandbox"


class Sandbox(BaseEnvironment):
    options_model = SandboxOptions
    options: SandboxOptions

    @staticmethod
    def type() -> str:
        return "autoagent-sandbox"

    @property
    def capabilities(self) -> EnvironmentCapabilities:
        return EnvironmentCapabilities(disable_internet=True, dynamic_network_policy=True)

    @classmethod
    def resource_capabilities(cls) -> EnvironmentResourceCapabilities:
        return EnvironmentResourceCapabilities(
            cpu_limit=True, memory_limit=True, fractional_cpus=True
        )

    @classmethod
    def preflight(cls, kwargs: dict | None = None) -> None:
        super().preflight(kwargs)
        problem = host_problem()
        if problem:
            raise SystemExit(problem)

    def _validate_definition(self) -> None:
        dockerfile = self.environment_dir / "Dockerfile"
        if not dockerfile.exists() and not self.task_env_config.docker_image:
            raise FileNotFoundError(
                f"{self.environment_dir} has no Dockerfile and task.toml names no "
                "docker_image: there is nothing to build the environment from."
            )
        self._project = read_project(self.environment_dir, self.task_env_config.env)
        self._plan = read_plan(self.environment_dir, self.task_env_config.docker_image,
                               build_args=self._build_args)  # fmt: skip
        self._binds = self._user_mounts()

    @property
    def _build_args(self) -> dict[str, str]:
        return self._project.main.args if self._project else {}

    def _user_mounts(self) -> list[Bind]:
        """The mounts the user gave Harbor (`mounts` in the trial's environment config):
        host paths of the user's choosing, so bound as asked."""
        binds = []
        for mount in self._host_mounts:
            if mount.get("type") != "bind":
                raise SandboxUnavailableError(
                    f"The mount at {mount.get('target')} is of type {mount.get('type')}; "
                    "the sandbox mounts host directories (type bind) only"
                )
            binds.append(Bind(Path(mount["source"]), mount["target"], bool(mount.get("read_only"))))
        return binds

    # -- lifecycle ---------------------------------------------------------------

    async def start(self, force_build: bool) -> None:
        problem = host_problem()
        if problem:
            raise SandboxUnavailableError(problem)
        state_dir = (self.options.state_dir or default_state_dir()).absolute()
        image.sweep(state_dir)
        self._trial_dir = _claim_trial_dir(state_dir, self.session_id)
        options = self.options
        roots = Roots(state_dir, options.base, options.images, options.build_failure,
                      options.pass_env, force_build, self._warn, self.logger)  # fmt: skip
        main = await roots.build(self.environment_dir, self._trial_dir / "upper", args=self._build_args,
                                 docker_image=self.task_env_config.docker_image)  # fmt: skip
        self._plan = main.plan
        project = self._project
        services = project and Services(project, self._trial_dir, self.trial_paths.trial_dir, self.logger)
        self._jail = Jail(
            name=self._trial_dir.name,
            directory=self._trial_dir / "scratch",
            overlays=main.overlays,
            network=not self._network_disabled,
            hostname=_hostname(self.environment_name),
            env={**base_env(main.on_image, options.pass_env), **self._plan.env,
                 **(project.main.environment if project else {})},  # fmt: skip
            cpus=self._resource_limit_value("cpu", auto_mode=ResourceMode.LIMIT),
            memory_mb=self._resource_limit_value("memory", auto_mode=ResourceMode.LIMIT),
            pids=self.options.pids,
            binds=[*(services.binds(project.main, main) if services else ()), *self._binds],
        )
        await self._jail.start()
        # The sandbox's root as its processes see it; every file transfer starts here.
        self._root_fd = os.open(
            f"/proc/{self._jail.init_pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC
        )
        if os.path.samestat(os.fstat(self._root_fd), os.stat("/")):  # a recycled pid
            raise SandboxUnavailableError(f"The sandbox of {self.session_id} died as it started")
        for limit in self._jail.unenforced_limits:
            self._warn(f"The sandbox could not enforce the task's {limit} limit")
        paths = EnvironmentPaths.for_os(self.os)
        dirs = [paths.agent_dir, paths.verifier_dir, paths.artifacts_dir, self._workdir]
        for index, directory in enumerate(dirs):
            transfer.make_dir_inside(self._root_fd, str(directory), 0o777 if index < 3 else None)
        if services:
            self._services = services  # stopped with main, whatever happens next
            self.trial_paths.trial_dir.mkdir(parents=True, exist_ok=True)  # their logs
            services.write_hosts(self._jail, project.main)
            await services.start(self._jail, roots, base_env(True, options.pass_env), options.pids)
        await self._start_entrypoint()
        await self._wait_until_healthy()
        await self._upload_environment_dir_after_start()

    async def _start_entrypoint(self) -> None:
        """Harbor's Docker environment runs the image's ENTRYPOINT with `sh -c 'sleep
        infinity'` as its arguments (the CMD it sets); so does the sandbox, in the
        background. Its output goes to the trial directory's `entrypoint.log`."""
        if not self._plan.entrypoint:
            return
        argv = [*self._plan.entrypoint, "sh", "-c", "sleep infinity"]
        self.trial_paths.trial_dir.mkdir(parents=True, exist_ok=True)
        await self._running.run(
            ["/bin/sh", "-c", 'exec 2>&1; "$@" &', "sh", *argv],
            cwd=self._plan.workdir,
            user=self._plan.user,
            stdout_file=self.trial_paths.trial_dir / "entrypoint.log",
        )

    async def _wait_until_healthy(self) -> None:
        """`docker compose up --wait` waits for the image's HEALTHCHECK; Harbor's own
        loop has Docker's rules (start period, then retries). A probe that times out
        counts as a failed one, as in Docker."""
        check = self._plan.healthcheck
        if check is None:
            return
        seconds = max(1, math.ceil(check.timeout))
        await self.run_healthcheck(
            HealthcheckConfig(
                command=f"timeout {seconds} sh -c {shlex.quote(check.command)}",
                interval_sec=check.interval,
                timeout_sec=seconds + 5,
                start_period_sec=check.start_period,
                start_interval_sec=check.start_interval,
                retries=check.retries,
            )
        )

    def _record_death(self, why: str) -> None:
        """Say beside the trial's result that its sandbox died: whatever the trial records
        (a failed command, a verifier error), it is infrastructure, never the harness's fault."""
        self.logger.warning(why)
        with contextlib.suppress(OSError):
            (self.trial_paths.trial_dir / DIED_FILE).write_text(why + "\n")

    def _warn(self, message: str) -> None:
        """A warning in the log and, one line each, beside the trial's result."""
        self.logger.warning(message)
        with contextlib.suppress(OSError):
            with open(self.trial_paths.trial_dir / WARNINGS_FILE, "a") as file:
                file.write(" ".join(message.split()) + "\n")

    @property
    def _running(self) -> Jail:
        jail = getattr(self, "_jail", None)
        if jail is None or not jail.running:
            raise SandboxUnavailableError(f"The sandbox of {self.session_id} is not running")
        return jail

    @property
    def _workdir(self) -> str:
        return self.task_env_config.workdir or self._plan.workdir

    async def stop(self, delete: bool) -> None:
        services = getattr(self, "_services", None)
        if services is not None:
            await services.stop()
        jail = getattr(self, "_jail", None)
        if jail is not None:
            await jail.stop()
        root_fd = getattr(self, "_root_fd", None)
        if root_fd is not None:
            os.close(root_fd)
            self._root_fd = None
        trial_dir = getattr(self, "_trial_dir", None)
        if trial_dir is None:
            return
        if delete:
            await asyncio.get_running_loop().run_in_executor(
                None, shutil.rmtree, trial_dir, True
            )
        else:
            self.logger.info(f"Sandbox files kept at {trial_dir / 'upper'}")

    async def _apply_network_policy(self, network_policy: NetworkPolicy) -> None:
        # The whole sandbox at once, daemons left running included.
        await self._running.set_network(network_policy.network_mode == NetworkMode.PUBLIC)

    # -- commands ------------------------------------------------------------------

    async def exec(
        self,
        command: str,
        cwd: str | None = None,
        env: dict[str, str] | None = None,
        timeout_sec: int | None = None,
        user: str | int | None = None,
    ) -> ExecResult:
        """As Harbor's Docker environment: stderr merged into stdout (`stderr` is None),
        output streamed line by line to a scoped output callback, and a command that
        cannot start (an unknown user, a stopped sandbox) a non-zero return code."""
        user = self._resolve_user(user)
        return await self._exec_in(
            getattr(self, "_jail", None), ["bash", "-c", command],
            env=self._merge_env(env), cwd=cwd or self._workdir,
            user=user if user is not None else self._plan.user, timeout=timeout_sec,
        )  # fmt: skip

    async def service_exec(
        self, command: str, *, service: str | None = None, cwd: str | None = None,
        env: dict[str, str] | None = None, timeout_sec: int | None = None,
        user: str | int | None = None,
    ) -> ExecResult:  # fmt: skip
        """A command in one of a Compose task's services, as `docker compose exec` (with
        `sh -c`: a service's image need not have bash)."""
        if self.is_main_service(service):
            return await self.exec(command, cwd=cwd, env=env, timeout_sec=timeout_sec, user=user)
        services = getattr(self, "_services", None)
        running = services.running.get(service) if services else None
        if running is None:
            return ExecResult(stdout=f"The task has no service {service!r} running\n", return_code=1)
        return await self._exec_in(
            running.jail, ["sh", "-c", command], env=env or {},
            cwd=cwd or running.service.working_dir or running.plan.workdir,
            user=user if user is not None else running.service.user or running.plan.user,
            timeout=timeout_sec,
        )  # fmt: skip

    async def _exec_in(
        self, jail: Jail | None, argv: list[str], *, env: dict[str, str], cwd: str,
        user: str | int | None, timeout: int | None,
    ) -> ExecResult:  # fmt: skip
        if jail is None or not jail.running:
            return ExecResult(
                stdout=f"The sandbox of {self.session_id} is not running\n", return_code=1
            )
        with self._scratch_file(".out") as output:
            try:
                async with streamed(output, self._output_callback()) as collected:
                    result = await jail.run(
                        ["/bin/sh", "-c", 'exec "$@" 2>&1', "sh", *argv],
                        env=env, cwd=cwd, user=user, timeout=timeout, stdout_file=output,
                    )  # fmt: skip
            except JailError as error:  # Docker: "unable to find user ...", exit code 126
                if not jail.alive():  # not the command's doing: the sandbox itself is gone
                    self._record_death(f"the sandbox's first process died during the trial: {error}")
                    return ExecResult(stdout=f"The sandbox of {self.session_id} died: {error}\n", return_code=1)
                return ExecResult(stdout=f"{error}\n", return_code=126)
            text = collected.text() + result.stderr  # nsenter's own complaints, if any
        return ExecResult(stdout=text or None, return_code=result.return_code)

    @contextlib.contextmanager
    def _scratch_file(self, suffix: str):
        path = self._running.directory / f"{uuid.uuid4().hex}{suffix}"
        try:
            yield path
        finally:
            path.unlink(missing_ok=True)

    # -- files: copied by the host through the sandbox's root (see `transfer.py`) ------

    async def upload_file(self, source_path: Path | str, target_path: str) -> None:
        source = Path(source_path)
        if target_path.endswith("/") or transfer.is_dir_inside(self._root, target_path):
            directory, name = target_path.rstrip("/") or "/", source.name
        else:
            directory, name = str(PurePosixPath(target_path).parent), PurePosixPath(target_path).name
        await self._in_thread(transfer.copy_in, self._root, [(source, name)], directory)

    async def upload_dir(self, source_dir: Path | str, target_dir: str) -> None:
        source = Path(source_dir)
        entries = [(child, child.name) for child in sorted(source.iterdir())]
        await self._in_thread(transfer.copy_in, self._root, entries, target_dir)

    async def download_file(self, source_path: str, target_path: Path | str) -> None:
        outcome = await self._in_thread(transfer.copy_file_out, self._root, source_path, Path(target_path),
                                        limit=self.options.download_limit_mb * 2**20)  # fmt: skip
        for cut in outcome.cut:
            self.logger.warning(f"Copying {source_path} out of the sandbox: over "
                                f"{self.options.download_limit_mb} MB, {cut}")  # fmt: skip

    async def download_dir(self, source_dir: str, target_dir: Path | str) -> None:
        await self._download(source_dir, Path(target_dir))

    async def service_download_file(
        self, source_path: str, target_path: Path | str, *, service: str | None = None
    ) -> None:
        if self.is_main_service(service):
            return await self.download_file(source_path, target_path)
        with self._service_files(service) as root:
            await self._in_thread(transfer.copy_file_out, root, source_path, Path(target_path),
                                  limit=self.options.download_limit_mb * 2**20)  # fmt: skip

    async def service_download_dir(
        self, source_dir: str, target_dir: Path | str, *, service: str | None = None
    ) -> None:
        if self.is_main_service(service):
            return await self.download_dir(source_dir, target_dir)
        with self._service_files(service) as root:
            await self._in_thread(transfer.copy_dir_out, root, source_dir, Path(target_dir),
                                  limit=self.options.download_limit_mb * 2**20)  # fmt: skip

    def _service_files(self, service: str):
        services = getattr(self, "_services", None)
        running = services.running.get(service) if services else None
        if running is None or not running.jail.alive():
            raise SandboxUnavailableError(f"The task has no service {service!r} running")
        return root_of(running.jail)

    async def download_dir_filtered(
        self, *, source_dir: str, target_dir: Path | str,
        include: Sequence[str] | None = None, exclude: Sequence[str] | None = None,
        protect: Sequence[str] | None = None,
    ) -> None:  # fmt: skip
        def keep(path: str) -> bool:
            return bool(filter_paths_by_patterns([path], include=include, exclude=exclude)) or (
                path in (protect or ())
            )

        await self._download(source_dir, Path(target_dir), keep)

    async def download_dir_with_exclusions(
        self, *, source_dir: str, target_dir: Path | str, exclude: list[str]
    ) -> None:
        def keep(path: str) -> bool:  # as tar's --exclude: a pattern matches any part
            parts = path.split("/")
            return not any(
                fnmatch(part, pattern) or fnmatch("/".join(parts[: i + 1]), pattern)
                for i, part in enumerate(parts) for pattern in exclude
            )  # fmt: skip

        await self._download(source_dir, Path(target_dir), keep)

    async def _download(self, source: str, target: Path, keep=None) -> None:
        # Harbor reads the logs it copies (rewards, agents' own logs): there no link may
        # lead out, and their size is capped.
        logs = _is_log_dir(source)
        outcome = await self._in_thread(
            transfer.copy_dir_out, self._root, source, target, keep=keep,
            limit=(self.options.log_limit_mb if logs else self.options.download_limit_mb) * 2**20,
            inward_links_only=logs,
        )  # fmt: skip
        for note in outcome.notes:
            self.logger.warning(f"Copying {source} out of the sandbox: {note}")
        if outcome.cut:
            self.logger.warning(
                f"Copying {source} out of the sandbox: over "
                f"{self.options.log_limit_mb if logs else self.options.download_limit_mb} MB, "
                f"{len(outcome.cut)} files cut or left out (see {target / transfer.CUT_NOTE})"
            )

    @property
    def _root(self) -> int:
        self._running  # noqa: B018 (raises when the sandbox is not running)
        return self._root_fd

    async def _in_thread(self, function, *args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(function, *args, **kwargs)
        )


def host_problem() -> str | None:
    """Why this host cannot run the sandbox, or None."""
    if os.geteuid() != 0:
        return (
            "The autoagent sandbox must run as root: it mounts overlays in a private "
            "mount namespace. Run as root, or pick another environment with --env."
        )
    missing = [tool for tool in ("bwrap", "unshare", "setpriv", "pasta") if not shutil.which(tool)]
    if missing:
        return (
            f"The autoagent sandbox needs {', '.join(missing)}: "
            "apt-get install bubblewrap util-linux passt"
        )
    return None


def _claim_trial_dir(state_dir: Path, session_id: str) -> Path:
    trials = state_dir / "trials"
    trials.mkdir(parents=True, exist_ok=True)
    _sweep(trials)
    safe = re.sub(r"[^A-Za-z0-9._-]", "-", session_id)[:80]
    path = trials / f"{safe}-{uuid.uuid4().hex[:8]}"
    path.mkdir()
    (path / "owner").write_text(str(os.getpid()))
    return path


def _sweep(trials: Path) -> None:
    """Remove what crashed runs left behind: their processes and mounts died with them."""
    for path in trials.iterdir():
        try:
            os.kill(int((path / "owner").read_text()), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except (OSError, ValueError):
            pass  # being created right now, or not ours to judge


def _is_log_dir(path: str) -> bool:
    logs = EnvironmentPaths()
    inside = PurePosixPath("/", path)
    return any(inside == d or d in inside.parents for d in (logs.agent_dir, logs.verifier_dir))


def _hostname(name: str) -> str:
    return re.sub(r"[^a-z0-9-]", "-", name.lower()).strip("-")[:63] or "sandbox"
