"""A task's real base image: resolved, pulled, cached by digest and unpacked, without Docker.

`skopeo` copies the image named by the Dockerfile's `FROM` (or task.toml's
`docker_image`) from its registry, or from a local OCI layout or `docker save`
archive the user points to, into an OCI layout; `umoci` unpacks its layers,
whiteouts and all, into a root filesystem kept under the image's manifest digest.
That rootfs is the read-only lowest layer of every trial on the image, so it is
unpacked once. A reference seen once is not asked for again (as `docker build`
does with an image it has, unless told to pull): later trials cost nothing here.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import posixpath
import re
import shutil
import stat
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from autoagent.sandbox.dockerfile import Image

PULL_TIMEOUT = 1800  # seconds for one copy: a large image on a slow link
TRANSPORTS = ("oci:", "oci-archive:", "docker-archive:", "docker://", "dir:")
LOCAL_REGISTRIES = ("127.0.0.1", "localhost", "[::1]")
SHELL = "/bin/sh"  # what the sandbox itself runs inside the image to start
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # Docker's


_unavailable: dict[str, str] = {}  # reference key -> why, asked once per process


class ImageUnavailable(RuntimeError):
    """The image cannot be had (no registry, no such image, a broken archive, ...)."""


@dataclass(frozen=True)
class BaseImage:
    reference: str  # as the task names it
    digest: str  # the manifest digest, "sha256:..."
    rootfs: Path  # unpacked, read-only, shared by every trial
    config: dict  # the OCI image config's `config` object (Env, WorkingDir, User, ...)

    @property
    def defaults(self) -> Image:
        """What the image sets before the Dockerfile's first line: ENV, WORKDIR, USER,
        ENTRYPOINT and CMD."""
        env = dict(item.partition("=")[::2] for item in self.config.get("Env") or [])
        env.setdefault("PATH", DEFAULT_PATH)  # as Docker does for an image that sets none
        entrypoint, cmd = self.config.get("Entrypoint"), self.config.get("Cmd")
        return Image(
            base=self.reference,
            env=env,
            workdir=self.config.get("WorkingDir") or "/",
            user=self.config.get("User") or None,
            entrypoint=tuple(entrypoint) if entrypoint else None,
            cmd=tuple(cmd) if cmd else None,
        )


def source(reference: str, images: dict[str, str]) -> str:
    """Where skopeo reads `reference` from: a local layout or archive the user named, or
    its registry."""
    local = images.get(reference)
    if local is None:
        return f"docker://{reference}"
    if local.startswith(TRANSPORTS):
        return local
    path, _, tag = local.partition(":") if not os.path.exists(local) else (local, "", "")
    if os.path.isdir(path) and os.path.exists(os.path.join(path, "index.json")):
        return f"oci:{os.path.abspath(path)}" + (f":{tag}" if tag else "")
    if os.path.isfile(path):
        return f"docker-archive:{os.path.abspath(path)}"
    raise ImageUnavailable(
        f"The sandbox option images maps {reference!r} to {local!r}, which is neither an "
        "OCI layout (a directory with index.json, optionally followed by :TAG) nor a "
        "`docker save` archive"
    )


def ensure(
    reference: str, state_dir: Path, images: dict[str, str], refresh: bool = False
) -> BaseImage:
    """The unpacked image for `reference`, pulling and unpacking it first if needed.
    Blocking: call it from a worker thread."""
    for tool in ("skopeo", "umoci"):
        if shutil.which(tool) is None:
            raise ImageUnavailable(f"`{tool}` is not installed (apt-get install skopeo umoci)")
    origin = source(reference, images)
    root = state_dir / "images"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(f"{reference}\0{origin}\0{_local_version(origin)}".encode()).hexdigest()[:24]
    ref_file = root / "refs" / f"{key}.json"
    with open(root / "refs" / f"{key}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one pull per reference; the others wait for it
        if not refresh and (known := _known(ref_file, root, reference)):
            return known
        if not refresh and key in _unavailable:
            raise ImageUnavailable(_unavailable[key])
        _sweep(root)
        staging = root / f".pull-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            try:
                _skopeo_copy(origin, staging, reference)
            except ImageUnavailable as error:
                _unavailable[key] = str(error)
                raise
            digest = _manifest_digest(staging)
            target = root / digest.replace(":", "-")
            if not (target / "rootfs").exists():
                _unpack(staging, target, digest)
            tmp = ref_file.with_suffix(f".{uuid.uuid4().hex[:8]}")
            tmp.write_text(json.dumps({"reference": reference, "source": origin, "digest": digest}))
            tmp.replace(ref_file)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return _known(ref_file, root, reference)


def _local_version(origin: str) -> str:
    """Changes when a local layout or archive is rewritten, so that it is read again."""
    transport, _, rest = origin.partition(":")
    if transport not in ("oci", "oci-archive", "docker-archive", "dir"):  # not a registry
        return ""
    path = Path(rest.split(":")[0])
    marker = path / "index.json" if path.is_dir() else path
    with contextlib.suppress(OSError):
        stat = marker.stat()
        return f"{stat.st_size}:{stat.st_mtime_ns}"
    return ""


def _sweep(root: Path) -> None:
    """Remove the staging dirs of pulls whose process died midway (named .pull-PID-...)."""
    for path in [*root.glob(".pull-*"), *root.glob(".unpack-*")]:
        owner = path.name.split("-")[1]
        with contextlib.suppress(ValueError, PermissionError):
            try:
                os.kill(int(owner), 0)
            except ProcessLookupError:
                shutil.rmtree(path, ignore_errors=True)


def _known(ref_file: Path, root: Path, reference: str) -> BaseImage | None:
    with contextlib.suppress(OSError, ValueError, KeyError):
        digest = json.loads(ref_file.read_text())["digest"]
        directory = root / digest.replace(":", "-")
        config = json.loads((directory / "config.json").read_text())
        if (directory / "rootfs").is_dir():
            return BaseImage(reference, digest, directory / "rootfs", config)
    return None


def _skopeo_copy(origin: str, layout: Path, reference: str) -> None:
    command = ["skopeo", "copy", "--quiet", "--retry-times", "0"]
    if origin.startswith("docker://") and _registry(origin[len("docker://"):]) in LOCAL_REGISTRIES:
        command.append("--src-tls-verify=false")  # a registry on this machine has no TLS
    command += [origin, f"oci:{layout}:image"]
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=PULL_TIMEOUT, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        raise ImageUnavailable(f"pulling {reference} took over {PULL_TIMEOUT} s") from None
    if completed.returncode != 0:
        detail = completed.stderr.strip().splitlines()[-1:] or ["no output"]
        message = re.sub(r'^time="[^"]*" level=\w+ msg="(.*)"$', r"\1", detail[0])
        raise ImageUnavailable(f"{origin}: {message}")


def _registry(name: str) -> str:
    first, slash, _ = name.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        return "docker.io"
    return first.rsplit(":", 1)[0] if not first.startswith("[") else first.split("]")[0] + "]"


def _manifest_digest(layout: Path) -> str:
    index = json.loads((layout / "index.json").read_text())
    return index["manifests"][0]["digest"]


def _blob(layout: Path, digest: str) -> dict:
    algorithm, _, value = digest.partition(":")
    return json.loads((layout / "blobs" / algorithm / value).read_text())


def _unpack(layout: Path, target: Path, digest: str) -> None:
    """Layers into `target/rootfs` (whiteouts applied, owners kept), config beside it."""
    staging = target.parent / f".unpack-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        completed = subprocess.run(
            ["umoci", "raw", "unpack", "--image", f"{layout}:image", str(staging / "rootfs")],
            capture_output=True, text=True, timeout=PULL_TIMEOUT, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if completed.returncode != 0:
            raise ImageUnavailable(f"could not unpack {digest}: {completed.stderr.strip()[-500:]}")
        _remove_devices(staging / "rootfs")
        manifest = _blob(layout, digest)
        config = _blob(layout, manifest["config"]["digest"]).get("config") or {}
        (staging / "config.json").write_text(json.dumps(config))
        try:
            staging.rename(target)
        except OSError:  # unpacked meanwhile under another reference to the same digest
            pass
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_devices(rootfs: Path) -> None:
    """Device nodes an image brings would open the host's devices (a disk, memory) from
    inside: Docker's device cgroup forbids that; here they are not unpacked at all."""
    for directory, _, files in os.walk(rootfs):
        for name in files:
            path = os.path.join(directory, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
                os.unlink(path)


def has_shell(rootfs: Path) -> bool:
    """Whether /bin/sh exists inside `rootfs`, its symlinks followed within it."""
    resolved = _inside(rootfs, SHELL, 0)
    return resolved is not None and resolved.is_file()


def _inside(rootfs: Path, path: str, depth: int) -> Path | None:
    """`path` as the image sees it, resolved without ever leaving `rootfs`."""
    if depth > 40:
        return None
    parts = [part for part in path.split("/") if part]
    current = "/"
    for index, part in enumerate(parts):
        candidate = posixpath.normpath(posixpath.join(current, part))
        host = rootfs / candidate.lstrip("/")
        if host.is_symlink():
            link = os.readlink(host)
            rest = "/".join(parts[index + 1 :])
            target = posixpath.join(current, link, rest)  # an absolute link restarts at /
            return _inside(rootfs, posixpath.normpath("/" + target), depth + 1)
        current = candidate
    return rootfs / current.lstrip("/")
