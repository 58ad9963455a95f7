"""Where a sandbox's root comes from, for main and for each Compose service.

A root is the image the Dockerfile's `FROM` names (pulled and unpacked, see `oci.py`),
or the host's userland standing in for it when that image cannot be had (with a
warning), under the Dockerfile's replayed layer (see `image.py`); a Compose service
named by `image:` alone is that image, with no stand-in. `read_plan` and
`read_project` read the task's Dockerfile and Compose file; what the sandbox cannot
honour in them is a `SandboxUnavailableError` raised when the task loads.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import re
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from harbor.utils.env import resolve_env_vars

from autoagent.sandbox import compose_file, image, oci
from autoagent.sandbox.dockerfile import Image, UnsupportedDockerfile, build_plan
from autoagent.sandbox.jail import Overlay

DEFAULT_PATH = oci.DEFAULT_PATH
# Host variables that only say how to reach package registries (proxies, CA
# bundles, mirrors). Nothing else from the host's environment gets in.
PASS_THROUGH = (
    "http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY",
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS", "PIP_CERT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL",
    "PIP_TRUSTED_HOST", "PIP_DEFAULT_TIMEOUT", "UV_INDEX_URL", "UV_DEFAULT_INDEX",
)  # fmt: skip


class SandboxUnavailableError(RuntimeError):
    """This host cannot run the sandbox, or this task asks for what it cannot give."""


@dataclass(frozen=True)
class Root:
    """What a sandbox runs on: its image's settings and its root's overlays."""

    plan: Image
    overlays: list[Overlay]
    on_image: bool = True  # False where the host's userland stands in


@dataclass
class Roots:
    """Builds the roots of one trial's sandboxes, with the sandbox's options."""

    state_dir: Path
    base: str  # the option: auto | image | host
    images: dict[str, str]  # the option: references to local layouts or archives
    build_failure: str
    pass_env: list[str]
    refresh: bool  # Harbor's --force-build: pull and replay again
    warn: Callable[[str], None]  # in the log and beside the trial's result
    log: logging.Logger

    async def build(
        self, context: Path, upper: Path, dockerfile: str = "Dockerfile",
        args: dict[str, str] | None = None, docker_image: str | None = None,
        service: str | None = None,
    ) -> Root:  # fmt: skip
        """A root from the Dockerfile in `context` (main's, or a Compose service's build),
        its writes going to `upper`."""
        plan = read_plan(context, docker_image, dockerfile=dockerfile, build_args=args)
        base = await self.base_image(plan.base, context, service)
        if base is not None:  # the plan again, seeded by what the image itself sets
            plan = read_plan(context, docker_image, base.defaults, dockerfile=dockerfile, build_args=args)
        elif service is None:
            self._warn_about_stand_ins(plan, context, docker_image)
        layer = None
        if image.needs_layer(plan, on_image=base is not None):
            key = image.layer_key(
                context, docker_image, self.build_failure, base.digest if base else None,
                dockerfile, args,
            )  # fmt: skip
            layer = await image.ensure_layer(
                state_dir=self.state_dir,
                key=key,
                plan=plan,
                context=context,
                base_env=base_env(base is not None, self.pass_env),
                build_failure=self.build_failure,
                force=self.refresh,
                log=self.log,
                rootfs=base.rootfs if base else None,
            )
        for skipped in image.skipped_steps(layer):  # also when another trial built the layer
            self.warn(f"service `{service}`: {skipped}" if service else skipped)
        rootfs = base.rootfs if base else None
        return Root(plan, image.overlays(self.state_dir, layer, upper, rootfs), base is not None)

    async def for_service(self, service: compose_file.Service, context: Path, upper: Path) -> Root:
        """A Compose service's root: its build, or its image alone (which has no stand-in)."""
        if service.context is not None:
            return await self.build(service.context, upper, service.dockerfile, service.args,
                                    service=service.name)  # fmt: skip
        base = await self.base_image(service.image, context, service.name, stand_in=False)
        return Root(base.defaults, image.overlays(self.state_dir, None, upper, base.rootfs))

    async def base_image(
        self, reference: str, context: Path, service: str | None = None, stand_in: bool = True
    ) -> oci.BaseImage | None:
        """The image `reference`, or None where the host's userland stands in for it."""
        mode = self.base if stand_in else "image"
        of = f"service `{service}`: " if service else ""
        if mode == "host":
            return None
        try:
            if not reference:
                raise oci.ImageUnavailable("the task names no image")
            found = await asyncio.get_running_loop().run_in_executor(
                None, oci.ensure, reference, self.state_dir, self.images, self.refresh
            )
        except oci.ImageUnavailable as error:
            if not stand_in:
                raise SandboxUnavailableError(
                    f"{context}: {of}the image {reference} cannot be had, and a service's image "
                    f"is all there is of it (no Dockerfile the host could stand in for): {error}"
                ) from None
            if mode == "image":
                raise SandboxUnavailableError(
                    f"{context}: {of}the image {reference or '(none)'} cannot be had "
                    f"and the sandbox option base=image forbids the host stand-in: {error}"
                ) from None
            self.warn(
                f"{of}Image {reference or '(none)'} unavailable ({_gist(str(error))}): the host's "
                "userland stands in (--ek base=image makes this an error; the log has the detail)"
            )
            self.log.info(f"Why the image {reference} could not be had: {error}")
            return None
        if not oci.has_shell(found.rootfs):
            raise SandboxUnavailableError(
                f"The image {reference} has no {oci.SHELL}, which the sandbox runs inside it "
                "to start; use an image with a shell, or the sandbox option base=host"
            )
        return found

    def _warn_about_stand_ins(self, plan: Image, context: Path, docker_image: str | None) -> None:
        """Say where the host's userland is older than the image it stands in for."""
        if not (context / "Dockerfile").exists():
            self.log.warning(
                f"No Dockerfile: the host's userland stands in for the image "
                f"{docker_image}, which cannot be pulled here"
            )
        wanted = re.match(r"python:(\d+)\.(\d+)", plan.base)
        host = _host_python()
        if wanted and host and host < (int(wanted[1]), int(wanted[2])):
            self.warn(
                f"The task's image is {plan.base}; this host's python3 "
                f"{host[0]}.{host[1]} stands in for it, so newer language features are missing"
            )


def base_env(on_image: bool, pass_env: list[str]) -> dict[str, str]:
    """What every command starts with before the image's own ENV."""
    passed = {name: os.environ[name] for name in (*PASS_THROUGH, *pass_env) if name in os.environ}
    if on_image:  # the image's own ENV comes with the plan
        return {"PATH": DEFAULT_PATH, **passed}
    return {
        "PATH": DEFAULT_PATH,
        "LANG": "C.UTF-8",
        # Debian marks its Python "externally managed"; the images tasks name
        # (python:*-slim, ubuntu with pip) let `pip install` into the system.
        "PIP_BREAK_SYSTEM_PACKAGES": "1",
        **passed,
    }


def read_plan(
    environment_dir: Path, docker_image: str | None = None, base: Image | None = None,
    *, dockerfile: str = "Dockerfile", build_args: dict[str, str] | None = None,
) -> Image:  # fmt: skip
    """The task's Dockerfile as the sandbox will replay it; what it cannot honour is
    a `SandboxUnavailableError` naming the file, the line and the instruction.
    `base`: what the real image sets; without it, the host's userland stands in (with a
    Debian-family PATH)."""
    base = base or Image(env={"PATH": DEFAULT_PATH})
    path = environment_dir / dockerfile
    if not path.exists():
        if dockerfile != "Dockerfile":  # a Compose service's own choice
            raise SandboxUnavailableError(f"{path} does not exist")
        return replace(base, base=docker_image or "")
    try:
        return build_plan(path.read_text(), build_args=build_args, base=base)
    except UnsupportedDockerfile as error:
        raise SandboxUnavailableError(f"{path}: {error}") from None


def read_project(
    environment_dir: Path, task_env: dict[str, str] | None = None
) -> compose_file.Project | None:
    """The task's Compose file, if it has one; what the sandbox cannot honour in it is a
    `SandboxUnavailableError` naming the file, the service and the key. Its variables
    are task.toml's `[environment] env`, as Harbor gives them to `docker compose`."""
    if compose_file.find(environment_dir) is None:
        return None
    try:
        variables = resolve_env_vars(task_env or {})
    except ValueError as error:  # task.toml's env names a variable the host does not set
        raise SandboxUnavailableError(f"{environment_dir.parent / 'task.toml'}: {error}") from None
    try:
        return compose_file.load(environment_dir, variables)
    except compose_file.ComposeError as error:
        raise SandboxUnavailableError(
            f"{error}. Run this task with --env docker on a machine that has Docker, or with "
            "a cloud environment."
        ) from None


def _gist(detail: str, width: int = 100) -> str:
    """The end of a tool's chain of "doing x: doing y: what failed", where the cause is."""
    parts = [p.strip() for p in detail.split(": ") if p.strip()]
    gist = ": ".join(parts[-2:]) if len(parts) > 1 else detail.strip()
    return gist if len(gist) <= width else "..." + gist[-width:]


@functools.cache
def _host_python() -> tuple[int, int] | None:
    try:
        out = subprocess.run(
            ["/usr/bin/python3", "-c", "import sys; print(*sys.version_info[:2])"],
            capture_output=True, text=True, timeout=10,
        ).stdout.split()
        return int(out[0]), int(out[1])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return None
