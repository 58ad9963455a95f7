"""A task's container image: its base plus a replayed layer.

The base is the `FROM` image's unpacked root filesystem (see `oci.py`) or, when that
image cannot be had, the host's own system directories standing in for it, seen
read-only through overlays. A task's Dockerfile is
replayed once (RUN, COPY, WORKDIR, ...) into a copy-on-write layer that is cached
under its content hash and shared, read-only, by every trial of that task. Each
trial then writes into its own upper directories, which vanish at stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import glob
import hashlib
import io
import json
import logging
import os
import posixpath
import shlex
import shutil
import stat as stat_module
import tarfile
import time
import uuid
from pathlib import Path

from harbor.environments.definition import environment_content_hash

from autoagent.sandbox.dockerfile import Copy, Image, Run
from autoagent.sandbox.jail import Completed, Jail, Overlay

VERSION = "3"  # bump when a layer built by older code would no longer be right
# Top-level host directories that make up the userland. On merged-/usr systems
# /bin, /lib, ... are symlinks into /usr and are recreated as such.
USERLAND = ("usr", "etc", "var", "opt", "bin", "sbin", "lib", "lib32", "lib64", "libx32")
EMPTY_DIRS = {"proc": 0o555, "sys": 0o555, "dev": 0o755, "run": 0o755, "tmp": 0o1777,
              "root": 0o700, "home": 0o755, "mnt": 0o755, "srv": 0o755, "media": 0o755}  # fmt: skip
# Where a Debian-family image's /root/.profile and /root/.bashrc come from (base-files),
# with /etc/skel as the fallback on other hosts.
ROOT_DOTFILES = {
    ".profile": ("/usr/share/base-files/dot.profile", "/etc/skel/.profile"),
    ".bashrc": ("/usr/share/base-files/dot.bashrc", "/etc/skel/.bashrc"),
}
LOCKED_PASSWORD_FILES = ("shadow", "shadow-", "gshadow", "gshadow-")
ETC_MASK_REUSE_S = 60.0
_etc_masks: dict[tuple[Path, int], tuple[float, Path]] = {}
BUILD_OUTPUT_TAIL = 3000  # characters of a failed step's output shown in the error
# In a layer beside build.log: the Dockerfile lines build_failure=warn went past, one a line.
SKIPPED_FILE = "skipped.txt"

logger = logging.getLogger(__name__)


class BuildError(RuntimeError):
    """A Dockerfile step failed on this host; the message says which and why."""


def userland() -> list[str]:
    """The host directories seen (read-only, copy-on-write) inside every sandbox."""
    return [
        name
        for name in USERLAND
        if os.path.isdir(f"/{name}") and not os.path.islink(f"/{name}")
    ]


def skeleton(state_dir: Path) -> Path:
    """An almost empty root: mount points, standard dirs, the merged-/usr links and
    root's dotfiles."""
    path = state_dir / f"skeleton-v{VERSION}"
    if path.exists():
        return path
    staging = state_dir / f".skeleton-{os.getpid()}-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    for name in USERLAND:
        if os.path.islink(f"/{name}"):
            (staging / name).symlink_to(os.readlink(f"/{name}"))
        elif os.path.isdir(f"/{name}"):
            (staging / name).mkdir()
    for name, mode in EMPTY_DIRS.items():
        (staging / name).mkdir()
        (staging / name).chmod(mode)
    for name, candidates in ROOT_DOTFILES.items():  # a login shell reads them, as in the image
        source = next((Path(c) for c in candidates if os.path.isfile(c)), None)
        if source is not None:
            shutil.copyfile(source, staging / "root" / name)
    try:
        staging.rename(path)
    except OSError:  # another process made it first
        shutil.rmtree(staging)
    return path


def overlays(
    state_dir: Path, layer: Path | None, upper: Path, rootfs: Path | None = None
) -> list[Overlay]:
    """Root and userland overlays: [layer over] skeleton / host dirs, writes into `upper`.
    With an image's `rootfs`, one overlay: [layer over] the image.
    The host's /etc is seen through `etc_mask`, which hides its secrets."""
    def lowers(name: str, base: Path) -> tuple[Path, ...]:
        masks = (etc_mask(state_dir),) if name == "etc" else ()
        return ((layer / name,) if layer else ()) + masks + (base,)

    if rootfs is not None:
        return [Overlay("/", lowers("root", rootfs), upper / "root")]

    result = [Overlay("/", lowers("root", skeleton(state_dir)), upper / "root")]
    for name in userland():
        result.append(Overlay(f"/{name}", lowers(name, Path(f"/{name}")), upper / name))
    return result


def etc_mask(state_dir: Path) -> Path:
    """A layer over the host's /etc that hides what only root may read there (shadow
    files, sudoers, SSH host keys, private TLS keys, ...). The password files are
    replaced by copies with every password locked, so account tools still work;
    the rest is whited out. apt, pip and DNS need none of it. (Walking /etc takes
    tens of milliseconds: a mask is reused for a minute while /etc itself is unchanged.)"""
    key = (state_dir, os.stat("/etc").st_mtime_ns)
    cached = _etc_masks.get(key)
    if cached and time.monotonic() - cached[0] < ETC_MASK_REUSE_S and cached[1].exists():
        return cached[1]
    mask = _etc_mask(state_dir)
    _etc_masks[key] = (time.monotonic(), mask)
    return mask


def _etc_mask(state_dir: Path) -> Path:
    secrets = sorted(_etc_secrets())
    digest = hashlib.sha256()
    for path in secrets:
        stat = os.lstat(path)
        digest.update(f"{path}:{stat.st_mtime_ns}:{stat.st_size}:{stat.st_mode}\0".encode())
    mask = state_dir / f"etc-mask-v{VERSION}-{digest.hexdigest()[:16]}"
    if mask.exists():
        return mask
    staging = state_dir / f".etc-mask-{os.getpid()}-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    _copy_attributes("/etc", staging)
    for path in secrets:
        relative = os.path.relpath(path, "/etc")
        for parent in reversed(Path(relative).parents[:-1]):  # as the host has them
            if not (staging / parent).exists():
                (staging / parent).mkdir()
                _copy_attributes(f"/etc/{parent}", staging / parent)
        target = staging / relative
        if os.path.isdir(path) and not os.path.islink(path):
            target.mkdir(exist_ok=True)
            _copy_attributes(path, target)
        elif os.path.basename(path) in LOCKED_PASSWORD_FILES:
            target.write_text(_locked(Path(path)))
            _copy_attributes(path, target)
        else:
            os.mknod(target, 0o600 | stat_module.S_IFCHR, 0)  # an overlay whiteout
    try:
        staging.rename(mask)
    except OSError:  # another process made it first
        shutil.rmtree(staging)
    return mask


def _copy_attributes(source: str, target: Path) -> None:
    stat = os.lstat(source)
    os.chown(target, stat.st_uid, stat.st_gid)
    os.chmod(target, stat.st_mode & 0o7777)


def _etc_secrets() -> list[str]:
    """Entries under /etc that only root may read, and what is inside such dirs.
    (Files of a service's own account, like PostgreSQL's pg_hba.conf, stay: the
    service needs them and they hold no host credential.)"""
    found: list[str] = []
    for directory, dirs, files in os.walk("/etc"):
        hidden = any(directory == p or directory.startswith(p + "/") for p in found)
        for name in dirs + files:
            path = os.path.join(directory, name)
            with contextlib.suppress(OSError):
                stat = os.lstat(path)
                if hidden or (stat.st_uid == 0 and not stat.st_mode & stat_module.S_IROTH):
                    found.append(path)
    return found


def _locked(path: Path) -> str:
    """shadow/gshadow with every password field replaced by '*' (locked)."""
    lines = []
    for line in path.read_text(errors="replace").splitlines():
        fields = line.split(":")
        if len(fields) > 2:
            fields[1] = "*"
            if path.name.startswith("gshadow"):
                fields[2] = ""  # group administrators
        lines.append(":".join(fields))
    return "\n".join(lines) + "\n"


def layer_key(
    environment_dir: Path, docker_image: str | None, build_failure: str,
    image_digest: str | None = None, dockerfile: str = "Dockerfile",
    build_args: dict[str, str] | None = None,
) -> str:
    """Content hash of everything that decides what a replayed layer holds: on the host's
    userland, its packages; on a real image, the image's digest; a Compose file's
    choice of Dockerfile and build arguments."""
    digest = hashlib.sha256()
    content = environment_content_hash(environment_dir, docker_image=docker_image)
    for part in (VERSION, build_failure, content, image_digest or _host_fingerprint()):
        digest.update(part.encode() + b"\0")
    if dockerfile != "Dockerfile" or build_args:
        digest.update(json.dumps([dockerfile, build_args or {}], sort_keys=True).encode())
    return digest.hexdigest()[:24]


def _host_fingerprint() -> str:
    """Changes when the host's packages change, so stale layers are not reused."""
    parts = []
    for path in ("/var/lib/dpkg/status", "/etc/os-release"):
        with contextlib.suppress(OSError):
            stat = os.stat(path)
            parts.append(f"{path}:{stat.st_size}:{stat.st_mtime_ns}")
    return ";".join(parts)


async def ensure_layer(
    *,
    state_dir: Path,
    key: str,
    plan: Image,
    context: Path,
    base_env: dict[str, str],
    build_failure: str,
    force: bool,
    log: logging.Logger,
    rootfs: Path | None = None,
) -> Path:
    """Return the cached layer for `key`, replaying the Dockerfile first if needed."""
    layers = state_dir / "layers"
    layers.mkdir(parents=True, exist_ok=True)
    layer = layers / key
    lock_path = layers / f"{key}.lock"
    loop = asyncio.get_running_loop()
    with open(lock_path, "w") as lock:
        await _acquire(lock)  # one build per layer; trials of the same task wait for it
        try:
            if layer.exists() and not force:
                return layer
            staging = layers / f".build-{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
            # Outside `staging`, which goes on failure: a failed build's log stays here
            # for the user to read; a successful one moves into the layer.
            build_log = layers / f"{key}.build.log"
            try:
                await _replay(
                    staging, build_log, state_dir, plan, context, base_env, build_failure, log,
                    rootfs,
                )
                build_log.replace(staging / "build.log")
                if layer.exists():
                    await loop.run_in_executor(None, shutil.rmtree, layer)
                staging.rename(layer)
            finally:
                if staging.exists():
                    await loop.run_in_executor(None, shutil.rmtree, staging)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return layer


def skipped_steps(layer: Path | None) -> list[str]:
    """The Dockerfile lines `layer` was built without (build_failure=warn). Every trial on
    the layer must warn of them, not only the one whose start happened to build it: a task
    found sound without one of its lines has only been checked on this host's terms."""
    if layer is None:
        return []
    try:
        return (layer / SKIPPED_FILE).read_text().splitlines()
    except FileNotFoundError:
        return []


def sweep(state_dir: Path) -> None:
    """Remove what builds killed midway left behind (their processes died with them)."""
    _sweep_staging(state_dir, ".skeleton-")
    _sweep_staging(state_dir, ".etc-mask-")
    if (state_dir / "layers").is_dir():
        _sweep_staging(state_dir / "layers", ".build-")


def _sweep_staging(directory: Path, prefix: str) -> None:
    """Remove the half-built staging directories of processes that died building them."""
    for path in directory.glob(f"{prefix}*"):
        parts = path.name[len(prefix):].split("-")
        owner = parts[-2] if len(parts) >= 2 else ""
        if not owner.isdigit():
            continue
        try:
            os.kill(int(owner), 0)
        except ProcessLookupError:
            shutil.rmtree(path, ignore_errors=True)
        except OSError:
            pass


async def _acquire(lock) -> None:
    """An exclusive flock, waited for without blocking the event loop (and cancellable)."""
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            await asyncio.sleep(0.2)


async def _replay(
    staging: Path,
    log_path: Path,
    state_dir: Path,
    plan: Image,
    context: Path,
    base_env: dict[str, str],
    build_failure: str,
    log: logging.Logger,
    rootfs: Path | None = None,
) -> None:
    jail = Jail(
        name=staging.name,
        directory=staging / "scratch",
        overlays=overlays(state_dir, None, staging, rootfs),
        network=True,  # `docker build` has the network
        hostname="build",
        env=base_env,
    )
    staging.mkdir(parents=True)
    build_log = open(log_path, "w")
    skipped: list[str] = []
    try:
        await jail.start()
        if rootfs is None:
            await _python_alias(jail, plan)
        for step in plan.steps:
            await jail.run(["mkdir", "-p", step.workdir])
            if isinstance(step, Run):
                result = await jail.run(
                    list(step.argv), env=step.env, cwd=step.workdir, user=step.user
                )
            else:
                result = await _copy(jail, step, context, staging / "scratch")
            build_log.write(f"### line {step.line}: {step.text}\n{result.stdout}{result.stderr}\n")
            if result.return_code != 0:
                output = (result.stdout + result.stderr).strip()[-BUILD_OUTPUT_TAIL:]
                message = (
                    f"Dockerfile line {step.line} failed with exit code "
                    f"{result.return_code} on "
                    + (f"the image {plan.base}" if rootfs else "this host's userland (standing "
                       f"in for `{plan.base or 'the base image'}`)")
                    + f": {step.text}\n{output}\n"
                    "If the host already has what this line provides, run again with "
                    "the sandbox option build_failure=warn (autoagent: --ek build_failure=warn)."
                )
                if build_failure != "warn":
                    raise BuildError(message)
                log.warning("%s\n(build_failure=warn: going on with the next step)", message)
                skipped.append(
                    f"Dockerfile line {step.line} failed with exit code {result.return_code} "
                    f"and was skipped (build_failure=warn): {' '.join(step.text.split())}"
                )
        await jail.run(["mkdir", "-p", plan.workdir])
        if skipped:
            (staging / SKIPPED_FILE).write_text("".join(line + "\n" for line in skipped))
    except BuildError as error:
        raise BuildError(f"{error}\nFull build log: {log_path}") from None
    finally:
        build_log.close()
        await jail.stop()
        shutil.rmtree(staging / "scratch", ignore_errors=True)


def needs_layer(plan: Image, on_image: bool = False) -> bool:
    return bool(plan.steps) or (not on_image and _is_python_image(plan))


def _is_python_image(plan: Image) -> bool:
    return plan.base.startswith("python:")


async def _python_alias(jail: Jail, plan: Image) -> None:
    """`python:*` images have `python` and `pip`; Debian's userland has only python3."""
    if not _is_python_image(plan):
        return
    await jail.run(
        "for name in python pip; do command -v $name >/dev/null || "
        "{ target=$(command -v ${name}3) && ln -s $target /usr/local/bin/$name; }; done"
    )


async def _copy(jail: Jail, step: Copy, context: Path, scratch: Path) -> Completed:
    """COPY with Docker's rules: a directory's contents, files into a dir or to a name."""
    sources = _copy_sources(step, context)
    destination = step.destination
    into_dir = destination.endswith("/") or len(sources) > 1
    destination = posixpath.normpath(destination)
    if not into_dir and step.content is None and sources[0].is_file():
        into_dir = (await jail.run(["test", "-d", destination])).return_code == 0
    archive = scratch / f"copy-{uuid.uuid4().hex}.tar"
    names: list[str] = []
    with tarfile.open(archive, "w") as tar:
        if step.content is not None:
            target_dir, name = posixpath.split(destination)
            data = step.content.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
            names.append(name)
        elif into_dir or sources[0].is_dir():
            target_dir = destination
            for source in sources:
                children = sorted(source.iterdir()) if source.is_dir() else [source]
                for child in children:
                    tar.add(child, arcname=child.name, filter=root_owned)
                    names.append(child.name)
        else:
            target_dir, name = posixpath.split(destination)
            tar.add(sources[0], arcname=name, filter=root_owned)
            names.append(name)
    command = f"mkdir -p {shlex.quote(target_dir)} && tar -xf - -C {shlex.quote(target_dir)}"
    quoted = " ".join(shlex.quote(posixpath.join(target_dir, n)) for n in names)
    if step.chown and names:
        command += f" && chown -R {_owner(step.chown)} {quoted}"
    if step.chmod and names:
        command += f" && chmod -R {shlex.quote(step.chmod)} {quoted}"
    try:
        return await jail.run(command, stdin=archive)
    finally:
        archive.unlink(missing_ok=True)


def _owner(chown: str) -> str:
    """`--chown=user` without a group means the user's uid as the gid, as in Docker."""
    if ":" in chown:
        return shlex.quote(chown)
    if chown.isdigit():
        return f"{chown}:{chown}"
    return f"{shlex.quote(chown)}:$(id -u {shlex.quote(chown)})"


def _copy_sources(step: Copy, context: Path) -> list[Path]:
    root = context.resolve()
    sources = []
    for pattern in step.sources:
        for match in sorted(glob.glob(pattern, root_dir=context)) or [pattern]:
            path = (context / match).resolve()
            if not path.is_relative_to(root) or not path.exists():
                raise BuildError(
                    f"Dockerfile line {step.line}: {step.text}: "
                    f"{match!r} is not in the build context {context}"
                )
            sources.append(path)
    return sources


def root_owned(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info
