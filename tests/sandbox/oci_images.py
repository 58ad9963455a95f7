"""Small real OCI images built without Docker, and a real registry on 127.0.0.1 to serve them.

Two images: a Debian-flavoured one (a few of the host's dynamic binaries with their
libraries, its own os-release, users and homes; no python3) and a busybox one
(Debian's static busybox, and a static bash for Harbor's `bash -c`; no python3, no
coreutils). `umoci` turns a root directory into an image; `skopeo` pushes it; Debian's
`docker-registry` serves it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

DEBIAN_TOOLS = (
    "bash", "sh", "cat", "chmod", "chown", "cp", "echo", "env", "getent", "grep", "head", "id",
    "ln", "ls", "mkdir", "mv", "readlink", "rm", "setpriv", "sleep", "tar", "tee", "test",
    "touch", "uname",
)  # fmt: skip
DEBIAN_OS_RELEASE = 'PRETTY_NAME="AutoAgent test image (Debian-flavoured)"\nID=debian\nVERSION_CODENAME=autoagent-test\n'
BUSYBOX_OS_RELEASE = 'PRETTY_NAME="AutoAgent test image (busybox)"\nID=busybox\n'
IMAGE_PATH = "/usr/local/bin:/usr/bin:/bin:/opt/image-tools"


def tools_missing() -> str | None:
    missing = [t for t in ("umoci", "skopeo", "docker-registry") if not shutil.which(t)]
    if not os.path.exists("/bin/busybox") or not os.path.exists("/bin/bash-static"):
        missing.append("busybox-static bash-static")
    return f"apt-get install {' '.join(missing)}" if missing else None


def debian_rootfs(root: Path) -> Path:
    """The host's bash, coreutils, tar, setpriv and getent with their libraries."""
    root.mkdir(parents=True)
    for name in DEBIAN_TOOLS:
        binary = shutil.which(name, path="/usr/bin:/bin")
        assert binary, name
        _copy(binary, root / "usr/bin" / name)
        for library in _libraries(binary):
            _copy(library, root / library.lstrip("/"))
    (root / "bin").symlink_to("usr/bin")  # as a merged-/usr Debian has it
    _etc(root, DEBIAN_OS_RELEASE)
    (root / "home/tester").mkdir(parents=True)
    (root / "home/tester/.profile").write_text("export FROM_PROFILE=image-home\n")
    os.chown(root / "home/tester", 1234, 1234)
    os.chown(root / "home/tester/.profile", 1234, 1234)
    return root


def busybox_rootfs(root: Path) -> Path:
    (root / "bin").mkdir(parents=True)
    shutil.copy2("/bin/busybox", root / "bin/busybox")
    shutil.copy2("/bin/bash-static", root / "bin/bash")
    applets = subprocess.run(["/bin/busybox", "--list"], capture_output=True, text=True).stdout
    for applet in applets.split():
        if applet not in ("busybox", "bash"):
            (root / "bin" / applet).symlink_to("busybox")
    _etc(root, BUSYBOX_OS_RELEASE)
    return root


def _etc(root: Path, os_release: str) -> None:
    for name in ("etc", "tmp", "root", "home", "usr/local/bin"):
        (root / name).mkdir(parents=True, exist_ok=True)
    (root / "tmp").chmod(0o1777)
    (root / "etc/os-release").write_text(os_release)
    (root / "etc/passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\ntester:x:1234:1234::/home/tester:/bin/bash\n"
    )
    (root / "etc/group").write_text("root:x:0:\ntester:x:1234:\n")


def _libraries(binary: str) -> list[str]:
    output = subprocess.run(["ldd", binary], capture_output=True, text=True).stdout
    return re.findall(r"(/\S+) \(0x", output)


def _copy(source: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        shutil.copy2(os.path.realpath(source), target)


def oci_layout(rootfs: Path, layout: Path, tag: str, *, workdir: str = "/",
               user: str = "root") -> str:  # fmt: skip
    """An OCI image of `rootfs` in the layout `layout`, as `layout:tag`."""
    image = f"{layout}:{tag}"
    if not layout.exists():
        _run(["umoci", "init", "--layout", str(layout)])
    _run(["umoci", "new", "--image", image])
    _run(["umoci", "insert", "--image", image, str(rootfs), "/"])
    _run(["umoci", "config", "--image", image, "--config.env", f"PATH={IMAGE_PATH}",
          "--config.env", "IMAGE_MARK=from-image-config",
          "--config.workingdir", workdir, "--config.user", user])  # fmt: skip
    return image


def tag(image: str, name: str) -> str:
    """Point the tag `name` of `image`'s layout at `image`."""
    _run(["umoci", "tag", "--image", image, name])
    return f"{image.rpartition(':')[0]}:{name}"


def with_command(image: str, name: str, entrypoint: list[str], cmd: list[str]) -> str:
    """`image` tagged `name`, its config's ENTRYPOINT and CMD set."""
    target = tag(image, name)
    _run(["umoci", "config", "--image", target,
          *(arg for word in entrypoint for arg in ("--config.entrypoint", word)),
          *(arg for word in cmd for arg in ("--config.cmd", word))])  # fmt: skip
    return target


def insert(image: str, source: Path, target: str) -> str:
    """A layer holding `source` at `target`, on top of `image`."""
    _run(["umoci", "insert", "--image", image, str(source), target])
    return image


def layered(image: str, scratch: Path) -> str:
    """`image` plus layers that add files and then take them away again: a whiteout for
    /etc/doomed, and an opaque /opt/kept whose earlier contents vanish."""
    target = tag(image, f"{image.rpartition(':')[2]}-layered")
    scratch.mkdir(parents=True)
    (scratch / "doomed").write_text("deleted by a later layer\n")
    for name in ("old", "new"):
        (scratch / name).mkdir()
        (scratch / name / f"{name}-file").write_text(name)
    insert(insert(target, scratch / "doomed", "/etc/doomed"), scratch / "old", "/opt/kept")
    _run(["umoci", "insert", "--image", target, "--whiteout", "/etc/doomed"])
    _run(["umoci", "insert", "--image", target, "--opaque", str(scratch / "new"), "/opt/kept"])
    return target


def push(image: str, registry: str, name: str) -> str:
    reference = f"{registry}/{name}"
    _run(["skopeo", "copy", "--quiet", "--dest-tls-verify=false", f"oci:{image}",
          f"docker://{reference}"])  # fmt: skip
    return reference


def save(image: str, archive: Path, reference: str) -> None:
    """What `docker save` writes, from an OCI layout."""
    _run(["skopeo", "copy", "--quiet", f"oci:{image}", f"docker-archive:{archive}:{reference}"])


def _run(command: list[str]) -> None:
    completed = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, f"{command}: {completed.stderr}"


@contextlib.contextmanager
def registry(directory: Path):
    """Debian's docker-registry on a free port of 127.0.0.1; yields "127.0.0.1:PORT"."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {directory / 'storage'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    with open(directory / "registry.log", "wb") as log:
        process = subprocess.Popen(["docker-registry", "serve", str(config)],
                                   stdout=log, stderr=log, start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
                direct.open(f"http://127.0.0.1:{port}/v2/", timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, (directory / "registry.log").read_text()
                assert time.monotonic() < deadline, "the registry did not start"
                time.sleep(0.1)
        yield f"127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
