"""Tasks on their real base images, built without Docker and served by a real registry on
127.0.0.1; the same image from a local OCI layout; the host stand-in and its warning."""

import asyncio
import json
import os
import stat
import uuid
from pathlib import Path

import pytest
from harbor.models.task.config import EnvironmentConfig
from harbor.models.trial.paths import TrialPaths
from typer.testing import CliRunner

from autoagent.cli import app
from autoagent.evaluate import check
from autoagent.sandbox import Sandbox, SandboxUnavailableError
from autoagent.sandbox import jail as jail_module
from tests.conftest import _missing, write_task
from tests.sandbox import oci_images
from tests.sandbox.test_environment import make_sandbox

pytestmark = pytest.mark.usefixtures("needs_sandbox", "needs_image_tools")
# Before commands entered the sandbox through host code, they ran the image's own
# setpriv and GNU env, which busybox does not have.
HOST_SIDE_ENTRY = (Path(jail_module.__file__).parent / "enter.py").exists()
ANSWER = "/app/answer.txt"
GRADE = f'if {{ {{checks}}; }} && [ "$(cat {ANSWER})" = 42 ]; then echo 1; else echo 0; fi > /logs/verifier/reward.txt'  # fmt: skip
DEBIAN_CHECKS = (
    "grep -q VERSION_CODENAME=autoagent-test /etc/os-release",
    "! command -v python3",  # the host has one; the image has none
    'echo "$PATH" | grep -q "^/task/bin:.*/opt/image-tools$"',  # the image's ENV seeds PATH
    '[ "$IMAGE_MARK" = from-image-config ]',
    "grep -q built /etc/built-by-dockerfile",
)
BUSYBOX_CHECKS = (
    "grep -q ID=busybox /etc/os-release",
    '[ "$(readlink /bin/sh)" = busybox ]',
    "! command -v python3",
    "sh -c 'busybox --list' | grep -q '^ash$'",
)


def grade(checks: tuple[str, ...]) -> str:
    return GRADE.replace("{checks}", " && ".join(checks))


@pytest.fixture(scope="module")
def needs_image_tools():
    _missing(oci_images.tools_missing())


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    root = tmp_path_factory.mktemp("images")
    debian = oci_images.oci_layout(oci_images.debian_rootfs(root / "debian"), root / "layout", "debian")
    busybox = oci_images.oci_layout(oci_images.busybox_rootfs(root / "busybox"), root / "layout", "busybox")
    return {"debian": debian, "busybox": busybox}


@pytest.fixture(scope="module")
def registry(layouts, tmp_path_factory):
    with oci_images.registry(tmp_path_factory.mktemp("registry")) as address:
        for name, image in layouts.items():
            oci_images.push(image, address, f"{name}:1")
        yield address


def debian_task(root: Path, name: str, image: str) -> Path:
    dockerfile = (
        f"FROM {image}\nENV PATH=/task/bin:${{PATH}}\n"
        "RUN echo built > /etc/built-by-dockerfile\nWORKDIR /app\n"
    )
    return write_task(root, name, dockerfile=dockerfile, test=grade(DEBIAN_CHECKS),
                      solve=f"echo 42 > {ANSWER}")  # fmt: skip


def findings(tasks: Path, jobs: Path, **environment_kwargs) -> dict:
    result = asyncio.run(
        check(tasks, n_concurrent=2, jobs_dir=jobs, environment_kwargs=environment_kwargs)
    )
    return {finding.name: finding for finding in result}


def no_dockerfile(tmp_path: Path, docker_image: str) -> Sandbox:
    """A task that names its image in task.toml and has no Dockerfile."""
    environment = tmp_path / "environment"
    environment.mkdir()
    trial = TrialPaths(tmp_path / "trial")
    trial.mkdir()
    return Sandbox(environment_dir=environment, environment_name="unit",
                   session_id=f"unit__{uuid.uuid4().hex[:6]}__env", trial_paths=trial,
                   task_env_config=EnvironmentConfig(docker_image=docker_image))  # fmt: skip


def run_in(tmp_path: Path, dockerfile: str, command: str, user: str | None = None,
           **options) -> str:  # fmt: skip
    """`command`'s output in a sandbox on the Dockerfile's real image (never the host's)."""
    docker_image = options.pop("docker_image", None)
    box = make_sandbox(tmp_path, dockerfile) if dockerfile else no_dockerfile(tmp_path, docker_image)
    for name, value in {"base": "image", **options}.items():
        setattr(box.options, name, value)

    async def probe() -> str:
        await box.start(force_build=False)
        try:
            return (await box.exec(command, user=user)).stdout or ""
        finally:
            await box.stop(delete=True)

    return asyncio.run(probe())


def test_tasks_run_on_images_pulled_from_a_registry(registry, tmp_path):
    tasks = tmp_path / "tasks"
    debian_task(tasks, "debian", f"{registry}/debian:1")
    if HOST_SIDE_ENTRY:
        write_task(tasks, "busybox", dockerfile=f"FROM {registry}/busybox:1\nWORKDIR /app\n",
                   test=grade(BUSYBOX_CHECKS), solve=f"echo 42 > {ANSWER}")  # fmt: skip
    found = findings(tasks, tmp_path / "jobs", base="image")
    for name, finding in found.items():
        assert (finding.oracle, finding.nop, finding.problems) == (1.0, 0.0, []), name
        assert finding.warnings == [], name


@pytest.mark.skipif(not HOST_SIDE_ENTRY, reason="busybox has no setpriv/GNU env for the old entry")
def test_a_busybox_image_has_busybox_and_nothing_else(registry, tmp_path):
    """What an Alpine-like image lacks stays lacking: no coreutils, no python3."""
    output = run_in(tmp_path, f"FROM {registry}/busybox:1\n",
                    "readlink /bin/ls; ls /usr/bin/python3 2>&1; cat /etc/os-release")  # fmt: skip
    assert output.splitlines()[0] == "busybox"
    assert "No such file" in output and "ID=busybox" in output


def test_users_and_homes_are_the_images(registry, tmp_path):
    # A login shell reads the ~/.profile the image ships (the host has no such user).
    output = run_in(tmp_path, f"FROM {registry}/debian:1\n",
                    "echo $HOME; bash -lc 'echo $FROM_PROFILE'", user="tester")  # fmt: skip
    assert output.split() == ["/home/tester", "image-home"]


def test_the_same_image_from_a_local_oci_layout_without_a_registry(layouts, tmp_path):
    tasks = tmp_path / "tasks"
    reference = "registry.invalid/team/debian:1"  # no such registry: only the layout has it
    debian_task(tasks, "from-layout", reference)
    found = findings(tasks, tmp_path / "jobs", base="image", images={reference: layouts["debian"]})
    finding = found["from-layout"]
    assert (finding.oracle, finding.nop, finding.problems, finding.warnings) == (1.0, 0.0, [], [])


def test_a_docker_image_task_from_a_docker_save_archive(layouts, tmp_path):
    archive = tmp_path / "saved.tar"
    oci_images.save(layouts["debian"], archive, "saved/debian:1")
    output = run_in(tmp_path, "", "grep CODENAME /etc/os-release; echo $IMAGE_MARK",
                    docker_image="saved/debian:1", images={"saved/debian:1": str(archive)})  # fmt: skip
    assert output.split() == ["VERSION_CODENAME=autoagent-test", "from-image-config"]


def test_later_layers_delete_what_earlier_ones_added(layouts, tmp_path):
    image = oci_images.layered(layouts["debian"], tmp_path / "layers")
    output = run_in(tmp_path, "FROM local/layered:1\n", "ls /etc/doomed 2>&1; ls /opt/kept",
                    images={"local/layered:1": image})  # fmt: skip
    assert "No such file" in output and output.split()[-1] == "new-file"


def test_device_nodes_in_an_image_are_not_unpacked(layouts, tmp_path):
    """A layer with a block device of the host's first disk must not open it inside."""
    devices = tmp_path / "devices"
    devices.mkdir()
    os.mknod(devices / "disk", 0o666 | stat.S_IFBLK, os.makedev(8, 0))
    os.mknod(devices / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    image = oci_images.insert(oci_images.tag(layouts["debian"], "devices"), devices, "/opt/devices")
    output = run_in(tmp_path, "FROM local/devices:1\n", "ls -A /opt/devices; echo end",
                    images={"local/devices:1": image})  # fmt: skip
    assert output.split() == ["end"]


def test_a_rewritten_local_layout_is_read_again(layouts, tmp_path):
    moving = oci_images.tag(layouts["debian"], "moving")
    for name in ("1", "2"):
        (tmp_path / name).mkdir()
    options = {"images": {"local/moving:1": moving}}
    before = run_in(tmp_path / "1", "FROM local/moving:1\n", "ls /opt/kept 2>&1", **options)
    oci_images.tag(oci_images.layered(layouts["debian"], tmp_path / "layers"), "moving")
    after = run_in(tmp_path / "2", "FROM local/moving:1\n", "ls /opt/kept 2>&1", **options)
    assert "No such file" in before and after.strip() == "new-file"


def test_trials_starting_together_on_a_new_image_unpack_it_once(layouts, tmp_path):
    state = tmp_path / "state"
    reference = "local/debian:together"

    async def trial(index: int) -> str:
        box = make_sandbox(tmp_path, f"FROM {reference}\n")
        box.options.state_dir, box.options.base = state, "image"
        box.options.images = {reference: layouts["debian"]}
        await box.start(force_build=False)
        try:
            return (await box.exec("grep CODENAME /etc/os-release")).stdout.strip()
        finally:
            await box.stop(delete=True)

    async def together() -> list[str]:
        return await asyncio.gather(*(trial(index) for index in range(4)))

    assert asyncio.run(together()) == ["VERSION_CODENAME=autoagent-test"] * 4
    unpacked = [p.name for p in (state / "images").iterdir() if p.name != "refs"]
    assert len(unpacked) == 1 and unpacked[0].startswith("sha256-")  # no staging left behind


def test_an_unreachable_image_falls_back_to_the_host_with_a_warning(tmp_path):
    tasks = tmp_path / "tasks"
    test = "command -v python3 && echo 1 > /logs/verifier/reward.txt || echo 0 > /logs/verifier/reward.txt"
    write_task(tasks, "offline", dockerfile="FROM 127.0.0.1:9/nowhere/debian:12\nWORKDIR /app\n",
               test=test, solve="true")  # fmt: skip
    out = tmp_path / "check.json"
    result = CliRunner().invoke(
        app, ["check", str(tasks), "--json", str(out), "--jobs-dir", str(tmp_path / "jobs")]
    )
    # The task runs on the host's userland (its python3 answers the verifier)...
    (finding,) = json.loads(out.read_text())
    assert finding["oracle"] == 1.0, result.output
    # ...and says so, in the JSON and on screen.
    assert any("127.0.0.1:9/nowhere/debian:12 unavailable" in w and "host" in w
               for w in finding["warnings"]), finding  # fmt: skip
    assert "unavailable" in " ".join(result.output.split())


def test_base_image_fails_clearly_when_the_image_cannot_be_had(tmp_path):
    box = make_sandbox(tmp_path, "FROM 127.0.0.1:9/nowhere/debian:12\n")
    box.options.base = "image"
    with pytest.raises(SandboxUnavailableError, match=r"127\.0\.0\.1:9/nowhere/debian:12 cannot be had.*base=image"):
        asyncio.run(box.start(force_build=False))
    asyncio.run(box.stop(delete=True))


def test_an_image_without_a_shell_fails_clearly(tmp_path):
    rootfs = tmp_path / "rootfs"
    (rootfs / "etc").mkdir(parents=True)
    (rootfs / "etc/os-release").write_text("ID=shell-less\n")
    layout = oci_images.oci_layout(rootfs, tmp_path / "layout", "noshell")
    box = make_sandbox(tmp_path, "FROM local/noshell:1\n")
    box.options.images = {"local/noshell:1": layout}
    with pytest.raises(SandboxUnavailableError, match="has no /bin/sh"):
        asyncio.run(box.start(force_build=False))
    asyncio.run(box.stop(delete=True))


def test_a_compose_service_runs_on_its_image_with_the_images_entrypoint_and_cmd(layouts, tmp_path):
    """A service named by `image:` alone (its whole definition is the image's config):
    busybox's httpd, started from the config's ENTRYPOINT and CMD, reached by name."""
    web = oci_images.with_command(layouts["busybox"], "busybox-web", ["httpd"],
                                  ["-f", "-p", "8080", "-h", "/etc"])  # fmt: skip
    images = {"registry.invalid/busybox:1": layouts["busybox"], "registry.invalid/web:1": web}
    box = make_sandbox(tmp_path, "FROM registry.invalid/busybox:1\n", files={
        "docker-compose.yaml": "services:\n  web: {image: 'registry.invalid/web:1'}\n"
    })  # fmt: skip
    box.options.images = images

    async def fetch() -> str:
        await box.start(force_build=False)
        try:
            for _ in range(50):  # the service is started, not yet listening
                served = await box.exec("wget -qO- http://web:8080/os-release")
                if served.return_code == 0:
                    return served.stdout
                await asyncio.sleep(0.1)
            return served.stdout
        finally:
            await box.stop(delete=True)

    assert "ID=busybox" in asyncio.run(fetch())
