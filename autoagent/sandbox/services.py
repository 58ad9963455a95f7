"""The services of a Compose task, each a sandbox of its own beside the main one.

`docker compose up --wait` (Harbor's start) starts every service of the task (see
`compose_file.py`) in dependency order, waiting where a dependency says
`service_healthy` or `service_completed_successfully`, and returns once every service
with a healthcheck is healthy. So does `Services.start`, after the main sandbox is up
and before its entrypoint starts. Each service gets its own root (its image or
build, replayed and cached like main's), PID namespace and cgroup, and runs its
entrypoint and command as its first job, output in the trial directory's
`service-<name>.log`. All of them join the main sandbox's network namespace, as the
containers of a Kubernetes pod do: a service is reached at its name (every name of
the project resolves to 127.0.0.1 in /etc/hosts) on its own port, and the network
policy of the main sandbox (public or none, switched between phases) is theirs too.
Docker instead gives each container an address of its own; two services listening on
the same port are the one case that differs. Named volumes are directories of the
trial, seen by every service that mounts them; they start empty (owned as the image
has the mount point, but without its content).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from autoagent.sandbox import transfer
from autoagent.sandbox.compose_file import Project, Service, Volume
from autoagent.sandbox.dockerfile import Healthcheck, Image
from autoagent.sandbox.jail import Bind, Jail, JailError
from autoagent.sandbox.roots import Root, Roots

HOSTS = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"


class ServiceError(RuntimeError):
    """A service of the task could not start, exited, or never became healthy."""


@dataclass
class Running:
    service: Service
    jail: Jail
    plan: Image
    job: asyncio.Task  # the service's entrypoint and command: its "container"
    healthy: bool = False

    @property
    def healthcheck(self) -> Healthcheck | None:
        if self.service.healthcheck_disabled:
            return None
        return self.service.healthcheck or self.plan.healthcheck


class Services:
    def __init__(self, project: Project, directory: Path, logs: Path, log: logging.Logger) -> None:
        self.project = project
        self.directory = directory  # the trial's: roots, scratch, volumes
        self.logs = logs  # the trial's results directory: service-<name>.log
        self.log = log
        self.running: dict[str, Running] = {}

    def binds(self, service: Service, root: Root) -> list[Bind]:
        """Where a service's (or main's) volumes come from: a directory of the trial per
        named volume, shared; a copy of the task's directory per writable bind, so no
        trial changes the task or another trial's files."""
        return [self._bind(service.name, volume, root) for volume in service.volumes if volume.source]

    def _bind(self, owner: str, volume: Volume, root: Root) -> Bind:
        if not volume.bind:
            source = self.directory / "volumes" / volume.source
            source.mkdir(parents=True, exist_ok=True)
            if not any(source.iterdir()):  # as Docker fills an empty volume at each mount
                _take_attributes(source, root, volume.target)
            return Bind(source, volume.target, volume.read_only)
        if volume.read_only:
            return Bind(Path(volume.source), volume.target, True)
        copy = self.directory / "binds" / owner / volume.target.strip("/").replace("/", "_")
        if not copy.exists():
            copy.parent.mkdir(parents=True, exist_ok=True)
            if Path(volume.source).is_dir():
                shutil.copytree(volume.source, copy, symlinks=True)
            else:
                shutil.copy2(volume.source, copy)
        return Bind(copy, volume.target)

    async def start(self, main: Jail, roots: Roots, env: dict[str, str], pids: int | None) -> None:
        """Start every service after the main sandbox is up, each once its dependencies are
        as it asks; then wait for what main itself depends on, and for what Harbor's
        `docker compose up --wait` waits for."""
        for service in self.project.services:
            await self._wait_for(service)
            await self._start(service, main, roots, env, pids)
        await self._wait_for(self.project.main)
        await self._as_up_wait()

    async def _as_up_wait(self) -> None:
        """`up --wait` also wants every service with a healthcheck healthy, except those
        another waits on to complete (one-shot set-up jobs)."""
        one_shots = {
            name for service in (self.project.main, *self.project.services)
            for name, condition in service.depends_on.items()
            if condition == "service_completed_successfully"
        }  # fmt: skip
        for name, running in self.running.items():
            if name in one_shots:
                continue
            if running.healthcheck is not None:
                await self._healthy(running, for_whom="the task's start")

    async def _start(
        self, service: Service, main: Jail, roots: Roots, env: dict[str, str], pids: int | None
    ) -> None:
        home = self.directory / "services" / service.name
        root = await roots.for_service(service, self.project.path.parent, home / "upper")
        plan = root.plan
        entrypoint = service.entrypoint if service.entrypoint is not None else plan.entrypoint
        command = service.command
        if command is None and service.entrypoint is None:  # Compose: a new entrypoint drops CMD
            command = plan.cmd
        argv = [*(entrypoint or ()), *(command or ())]
        if not argv:
            raise ServiceError(f"{self.project.path}: service `{service.name}` has no command "
                               "(its image sets no ENTRYPOINT or CMD and the file names none)")  # fmt: skip
        jail = Jail(
            name=f"{self.directory.name}-{service.name}"[-80:],
            directory=home / "scratch",
            overlays=root.overlays,
            network_of=main,
            hostname=service.hostname or service.name,
            env={**env, **plan.env, **service.environment},
            cpus=service.cpus,
            memory_mb=service.memory_mb,
            pids=pids,
            binds=self.binds(service, root),
        )
        await jail.start()
        try:
            user = service.user or plan.user
            if user not in (None, "0", "root"):  # Docker refuses to start it without the user
                try:
                    await jail.account(user)
                except JailError as error:
                    raise ServiceError(f"service `{service.name}`: {error}") from None
            self.write_hosts(jail, service)
            log_file = self.logs / f"service-{service.name}.log"
            job = asyncio.ensure_future(jail.run(
                ["/bin/sh", "-c", 'exec "$@" 2>&1', "sh", *argv],
                cwd=service.working_dir or plan.workdir,
                user=user,
                stdout_file=log_file,
            ))  # fmt: skip
        except BaseException:
            await jail.stop()
            raise
        self.running[service.name] = Running(service, jail, plan, job)
        self.log.info(f"Service {service.name} started: {' '.join(argv)[:200]}")

    def write_hosts(self, jail: Jail, service: Service) -> None:
        """Every name of the project at 127.0.0.1 (one network namespace for all), and the
        service's extra hosts."""
        lines = [HOSTS, "127.0.0.1\t" + " ".join(self.project.names) + "\n"]
        lines += [f"{host.rpartition(':')[2]}\t{host.rpartition(':')[0]}\n" for host in service.extra_hosts]
        with root_of(jail) as root:
            transfer.write_inside(root, "/etc/hosts", "".join(lines).encode(), mode=0o644)

    async def _wait_for(self, service: Service) -> None:
        for name, condition in service.depends_on.items():
            needed = self.running[name]
            if condition == "service_healthy":
                await self._healthy(needed, for_whom=service.name)
            elif condition == "service_completed_successfully":
                try:
                    result = await needed.job
                except JailError as error:
                    raise ServiceError(f"service `{name}` could not run: {error}") from None
                if result.return_code != 0:
                    raise ServiceError(
                        f"service `{name}` exited with {result.return_code}, and `{service.name}` needs "
                        f"it to complete successfully (see service-{name}.log)"
                    )

    async def _healthy(self, running: Running, for_whom: str) -> None:
        """Docker's rules: failures in the start period do not count; then `retries` in a
        row mean unhealthy. A probe that outlives its timeout failed."""
        name = running.service.name
        check = running.healthcheck
        if running.healthy:
            return
        if check is None:
            raise ServiceError(
                f"`{for_whom}` waits for service `{name}` to be healthy, but it has no healthcheck"
            )
        start_period_end = time.monotonic() + check.start_period
        failures = 0
        while True:  # as Docker, the first probe comes one interval after the start
            starting = time.monotonic() < start_period_end
            await asyncio.sleep(check.start_interval if starting else check.interval)
            passed = False
            if not running.job.done():
                with contextlib.suppress(Exception):
                    result = await running.jail.run(["/bin/sh", "-c", check.command], timeout=check.timeout)
                    passed = result.return_code == 0
            if running.job.done():  # a stopped container is never healthy
                raise ServiceError(
                    f"service `{name}` exited before it became healthy (see service-{name}.log)"
                )
            if passed:
                running.healthy = True
                return
            if not starting:
                failures += 1
                if failures >= check.retries:
                    raise ServiceError(
                        f"service `{name}` did not become healthy ({check.retries} failed checks of "
                        f"`{check.command}`; see service-{name}.log)"
                    )

    async def stop(self) -> None:
        for running in reversed(list(self.running.values())):
            await running.jail.stop()
            running.job.cancel()
            with contextlib.suppress(BaseException):
                await running.job
        self.running.clear()


@contextlib.contextmanager
def root_of(jail: Jail):
    """The jail's root as its processes see it: files are copied through it (`transfer.py`)."""
    root = os.open(f"/proc/{jail.init_pid}/root", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield root
    finally:
        os.close(root)


def _take_attributes(volume: Path, root: Root, target: str) -> None:
    """Give an empty volume the owner and mode of the directory the image has where it is
    mounted (a database image's data directory belongs to its user), as Docker does when it
    fills the volume; the content itself is not copied. The topmost layer that has the path
    decides; nothing is followed."""
    for overlay in sorted(root.overlays, key=lambda o: len(o.target), reverse=True):
        inside = PurePosixPath(target).relative_to("/")
        if overlay.target != "/" and not PurePosixPath(target).is_relative_to(overlay.target):
            continue
        relative = inside.relative_to(overlay.target.lstrip("/")) if overlay.target != "/" else inside
        for lower in overlay.lowers:
            found = lower / relative
            if os.path.lexists(found):
                info = os.lstat(found)
                if stat.S_ISDIR(info.st_mode):
                    os.chown(volume, info.st_uid, info.st_gid)
                    volume.chmod(stat.S_IMODE(info.st_mode))
                return
        return
