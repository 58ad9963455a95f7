"""A trial that replaces the tools the host would use to enter its sandbox gains nothing:
from a solution script run through Harbor, an agent command, and a Dockerfile RUN line."""

import asyncio
import pytest

from autoagent.evaluate import evaluate
from tests.conftest import write_task
from tests.sandbox.test_environment import make_sandbox
from tests.security.conftest import capabilities, docker_default

pytestmark = pytest.mark.usefixtures("needs_sandbox")

SHOW_CAPS = "grep ^Cap /proc/self/status"


async def test_an_agent_command_that_replaces_host_tools_gains_nothing(tmp_path, trap):
    box = make_sandbox(tmp_path)  # public network, like most tasks
    await box.start(force_build=False)
    try:
        planted = await box.exec(trap.plant)
        assert planted.return_code == 0, planted.stderr
        after = await box.exec("echo next command; cat /tmp/leaked 2>/dev/null; true")
        trap.assert_sprung_by_nobody(after.stdout or "", after.stderr or "")
        assert (after.stdout or "").startswith("next command")
        status = await box.exec(SHOW_CAPS)
        assert capabilities(status.stdout) == docker_default()
        assert capabilities((await box.exec(SHOW_CAPS, user="nobody")).stdout)["CapEff"] == 0
    finally:
        await box.stop(delete=True)


async def test_a_dockerfile_run_line_that_replaces_host_tools_gains_nothing(tmp_path, trap):
    dockerfile = (
        f"FROM debian:bookworm-slim\nRUN {trap.plant}\n"
        f"RUN {SHOW_CAPS} > /build-caps; cat /tmp/leaked > /build-leak 2>/dev/null; true\n"
        "WORKDIR /app\n"
    )
    box = make_sandbox(tmp_path, dockerfile)
    await box.start(force_build=False)
    try:
        during_build = await box.exec("cat /build-caps; cat /build-leak 2>/dev/null; true")
        trap.assert_sprung_by_nobody(during_build.stdout or "")
        assert capabilities(during_build.stdout) == docker_default()  # `docker build` has the network
        in_trial = await box.exec(f"{SHOW_CAPS}; cat /tmp/leaked 2>/dev/null; true")
        trap.assert_sprung_by_nobody(in_trial.stdout or "")
        assert capabilities(in_trial.stdout) == docker_default()
    finally:
        await box.stop(delete=True)


def test_a_solution_script_that_replaces_host_tools_gains_nothing(tmp_path, trap):
    tasks = tmp_path / "tasks"
    write_task(
        tasks, "impostor", solve=trap.plant,
        test=f"{SHOW_CAPS}; cat /tmp/leaked 2>/dev/null; echo 1 > /logs/verifier/reward.txt",
        toml='[verifier]\ntimeout_sec = 60.0\n[environment]\nnetwork_mode = "no-network"\n',
    )  # fmt: skip
    result = asyncio.run(evaluate(tasks, "oracle", jobs_dir=tmp_path / "jobs"))
    written = [p.read_text(errors="replace") for p in (tmp_path / "jobs").rglob("*") if p.is_file()]
    trap.assert_sprung_by_nobody(*written)
    assert (result.passed, result.total) == (1, 1), result.to_json()
    verifier_output = next((tmp_path / "jobs").rglob("test-stdout.txt")).read_text()
    assert capabilities(verifier_output) == docker_default()


async def test_a_user_command_inherits_no_capability_from_how_the_host_started_us(tmp_path):
    """Some hosts start services with inheritable capabilities (systemd, older container
    runtimes); a non-root command must not keep them across its change of user."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header, before = Header(0x20080522, 0), (Data * 2)()
    assert libc.capget(ctypes.byref(header), before) == 0
    raised = (Data * 2)(*[Data(d.effective, d.permitted, d.inheritable) for d in before])
    raised[0].inheritable |= 1 << 27  # CAP_MKNOD: dropped inside on purpose (no device cgroup)
    assert libc.capset(ctypes.byref(Header(0x20080522, 0)), raised) == 0
    box = make_sandbox(tmp_path)
    try:
        await box.start(force_build=False)
        caps = capabilities((await box.exec(SHOW_CAPS, user="nobody")).stdout)
        assert caps["CapInh"] == 0 and caps["CapEff"] == 0 and caps["CapPrm"] == 0
    finally:
        await box.stop(delete=True)
        libc.capset(ctypes.byref(Header(0x20080522, 0)), before)
