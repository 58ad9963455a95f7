"""The sandbox as Harbor sees it: isolation, fidelity to the Dockerfile, file transfer."""

import asyncio
import os
import re
import time
import uuid
from pathlib import Path

import pytest
from harbor.models.task.config import EnvironmentConfig, NetworkMode, NetworkPolicy
from harbor.models.trial.paths import TrialPaths

from autoagent.sandbox import Sandbox
from autoagent.sandbox.environment import WARNINGS_FILE
from autoagent.sandbox.jail import CommandTimeoutError
from tests.conftest import write_task

pytestmark = pytest.mark.usefixtures("needs_sandbox")


def make_sandbox(tmp_path: Path, dockerfile: str = "FROM debian:bookworm-slim\nWORKDIR /app\n",
                 *, network: str = "public", files: dict[str, str] | None = None,
                 **config) -> Sandbox:  # fmt: skip
    environment = tmp_path / f"env-{uuid.uuid4().hex[:6]}"
    environment.mkdir()
    (environment / "Dockerfile").write_text(dockerfile)
    for name, content in (files or {}).items():
        (environment / name).parent.mkdir(parents=True, exist_ok=True)
        (environment / name).write_text(content)
    trial = TrialPaths(tmp_path / f"trial-{uuid.uuid4().hex[:6]}")
    trial.mkdir()
    return Sandbox(
        environment_dir=environment,
        environment_name="unit",
        session_id=f"unit__{uuid.uuid4().hex[:6]}__env",
        trial_paths=trial,
        task_env_config=EnvironmentConfig(**config),
        network_policy=NetworkPolicy(network_mode=NetworkMode(network)),
    )


@pytest.fixture
async def sandbox(tmp_path):
    box = make_sandbox(tmp_path)
    await box.start(force_build=False)
    yield box
    await box.stop(delete=True)


async def test_writes_inside_never_reach_the_host(sandbox, tmp_path):
    victim = tmp_path / "host-file"
    victim.write_text("original")
    attempts = [
        f"echo changed > {victim}",
        "echo changed > /usr/share/autoagent-probe",
        "echo changed > /etc/autoagent-probe",
        f"mkdir -p {tmp_path} && echo changed > {victim}",
        "echo 1 > /proc/sys/vm/overcommit_memory",
        "mount -t tmpfs none /mnt",
        "mknod /tmp/disk b 8 0",
    ]
    before = Path("/proc/sys/vm/overcommit_memory").read_text()
    for command in attempts:
        await sandbox.exec(command)
    assert victim.read_text() == "original"
    assert not Path("/usr/share/autoagent-probe").exists()
    assert not Path("/etc/autoagent-probe").exists()
    assert Path("/proc/sys/vm/overcommit_memory").read_text() == before
    result = await sandbox.exec("mount -t tmpfs none /mnt; echo $?")
    assert result.stdout.strip() != "0"


async def test_host_secrets_in_the_environment_stay_out(sandbox, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret")
    result = await sandbox.exec("env; cat /proc/1/environ | tr '\\0' '\\n'")
    assert "sk-host-secret" not in (result.stdout or "")
    assert "PIP_BREAK_SYSTEM_PACKAGES=1" in result.stdout


async def test_host_home_and_work_dirs_are_not_visible(sandbox):
    result = await sandbox.exec(f"ls -A /root; ls {Path.cwd()} 2>&1; ls /work 2>&1")
    assert "No such file or directory" in result.stdout
    assert ".cache" not in result.stdout


async def test_no_network_mode_reaches_nothing_outside(tmp_path):
    box = make_sandbox(tmp_path, network="no-network")
    await box.start(force_build=False)
    try:
        probe = (
            "python3 -c \"import socket; socket.create_connection(('1.1.1.1', 53), timeout=3)\""
            " 2>/dev/null && echo reached || echo blocked"
        )
        assert (await box.exec(probe)).stdout.strip() == "blocked"
        dns = await box.exec("getent hosts pypi.org && echo resolved || echo unresolved")
        assert dns.stdout.strip().endswith("unresolved")
        # Loopback still works inside, for the agent's own servers.
        server = await box.exec(
            "python3 -m http.server 8765 --bind 127.0.0.1 >/dev/null 2>&1 & sleep 1; "
            "python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:8765').status)\""
        )
        assert server.stdout.strip() == "200"
    finally:
        await box.stop(delete=True)


async def test_network_policy_switch_applies_to_the_next_commands(tmp_path):
    box = make_sandbox(tmp_path, network="public")
    await box.start(force_build=False)
    try:
        # The interfaces of the command's own network namespace (/sys is the host's).
        interfaces = (
            "python3 -c \"import socket; print(*sorted(n for _, n in socket.if_nameindex()))\""
        )
        public = (await box.exec(interfaces)).stdout.split()
        assert "lo" in public and public != ["lo"]  # pasta's interface, not just loopback
        await box.set_network_policy(NetworkPolicy(network_mode=NetworkMode.NO_NETWORK))
        assert (await box.exec(interfaces)).stdout.split() == ["lo"]
    finally:
        await box.stop(delete=True)


def _pids_in_namespace(ns: str, wait: float = 5.0) -> list[int]:
    """Live processes of the namespace (a zombie is dead already: it waits for its reaper, and
    where the container's own PID 1 does not reap, it waits forever), after up to `wait` s."""
    deadline = time.monotonic() + wait
    while True:
        found = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    if os.readlink(f"/proc/{entry}/ns/pid") == ns and "\nState:\tZ" not in Path(
                            f"/proc/{entry}/status").read_text():  # fmt: skip
                        found.append(int(entry))
                except OSError:
                    pass
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


async def test_background_processes_survive_between_execs_and_die_at_stop(tmp_path):
    box = make_sandbox(tmp_path)
    await box.start(force_build=False)
    await box.exec("nohup sleep 600 >/dev/null 2>&1 &")
    await box.exec("setsid sleep 601 >/dev/null 2>&1 < /dev/null &")
    # (a background command may still be starting: give it a moment to exec)
    listing = await box.exec("for _ in $(seq 50); do ps -eo args | grep -q '^sleep 601' && break; sleep 0.1; done; ps -eo args")
    assert "sleep 600" in listing.stdout and "sleep 601" in listing.stdout
    namespace = os.readlink(f"/proc/{box._jail._init_pid}/ns/pid")
    trial_dir = box._trial_dir
    mounts_during = Path("/proc/self/mountinfo").read_text()
    await box.stop(delete=True)
    assert _pids_in_namespace(namespace) == []
    assert not trial_dir.exists()
    assert str(trial_dir) not in mounts_during  # the overlays never appeared on the host
    assert str(trial_dir) not in Path("/proc/self/mountinfo").read_text()


async def test_exec_timeout_kills_the_command_and_raises(sandbox):
    with pytest.raises(CommandTimeoutError, match="timed out after 1 seconds"):
        await sandbox.exec("sleep 30 & echo started; sleep 30", timeout_sec=1)
    listing = await sandbox.exec("ps -eo args")
    assert "sleep 30" not in listing.stdout


async def test_cancellation_kills_the_command_and_propagates(sandbox):
    task = asyncio.create_task(sandbox.exec("sleep 45"))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "sleep 45" not in (await sandbox.exec("ps -eo args")).stdout


async def test_dockerfile_is_replayed_once_and_cached(tmp_path):
    dockerfile = (
        "FROM python:3.12-slim\nWORKDIR /app\nENV GREETING=hello\nCOPY data /data\n"
        "COPY script.sh ./\nRUN echo built-$GREETING > /app/marker && date +%s%N > /app/stamp\n"
        "RUN useradd -m worker\n"
    )
    files = {"data/a.txt": "A\n", "data/sub/b.txt": "B\n", "script.sh": "echo hi\n"}
    first = make_sandbox(tmp_path, dockerfile, files=files)
    await first.start(force_build=False)
    try:
        result = await first.exec("pwd; cat marker; cat /data/a.txt /data/sub/b.txt; ls; echo $GREETING; command -v python")
        assert result.stdout.split() == ["/app", "built-hello", "A", "B", "marker", "script.sh", "stamp",
                                         "hello", "/usr/local/bin/python"]  # fmt: skip
        assert (await first.exec("id -un", user="worker")).stdout.strip() == "worker"
        stamp = (await first.exec("cat stamp")).stdout
        await first.exec("echo trial-only > /app/marker")
    finally:
        await first.stop(delete=True)
    # A second trial of the same environment reuses the layer and starts clean.
    second = make_sandbox(tmp_path, dockerfile, files=files)
    await second.start(force_build=False)
    try:
        assert (await second.exec("cat stamp")).stdout == stamp
        assert (await second.exec("cat marker")).stdout.strip() == "built-hello"
    finally:
        await second.stop(delete=True)


async def test_a_failing_run_line_fails_with_the_line_and_its_output(tmp_path):
    dockerfile = "FROM ubuntu:24.04\nRUN echo preparing && exit 3\n"
    box = make_sandbox(tmp_path, dockerfile)
    expected = r"line 2 failed with exit code 3[\s\S]*ubuntu:24.04[\s\S]*preparing"
    with pytest.raises(Exception, match=expected) as failure:
        await box.start(force_build=False)
    await box.stop(delete=True)
    # The full build log outlives the failed build, and the error says where it is.
    log = re.search(r"Full build log: (\S+)", str(failure.value))
    assert log, str(failure.value)
    assert "### line 2: RUN echo preparing && exit 3\npreparing" in Path(log.group(1)).read_text()


async def test_build_failure_warn_goes_on(tmp_path):
    dockerfile = "FROM ubuntu:24.04\nRUN exit 3\nRUN echo after > /after\n"
    box = make_sandbox(tmp_path, dockerfile)
    box.options.build_failure = "warn"
    await box.start(force_build=False)
    try:
        assert (await box.exec("cat /after")).stdout.strip() == "after"
    finally:
        await box.stop(delete=True)


async def test_a_skipped_run_line_is_a_warning_of_every_trial_on_the_layer(tmp_path):
    # `check` shows a trial's warnings: a task found sound without one of its Dockerfile
    # lines must say so, also for the trials that reuse the layer another trial built.
    dockerfile = "FROM ubuntu:24.04\nRUN echo npm conflicts && exit 100\nRUN true\n"
    for _ in ("builds the layer", "reuses it"):
        box = make_sandbox(tmp_path, dockerfile)
        box.options.build_failure = "warn"
        await box.start(force_build=False)
        await box.stop(delete=True)
        warnings = (box.trial_paths.trial_dir / WARNINGS_FILE).read_text()
        assert "Dockerfile line 2 failed with exit code 100" in warnings
        assert "RUN echo npm conflicts && exit 100" in warnings
        assert "RUN true" not in warnings


def test_check_reports_a_compose_task_it_cannot_run_before_any_trial(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from autoagent.cli import app

    tasks = tmp_path / "tasks"
    task = write_task(tasks, "with-services", test="echo 1 > /logs/verifier/reward.txt")
    (task / "environment" / "docker-compose.yaml").write_text(
        "services:\n  mcp: {image: mcp-server, privileged: true}\n"
    )
    result = CliRunner().invoke(app, ["check", str(tasks), "--jobs-dir", str(tmp_path / "jobs")])
    assert result.exit_code == 1
    assert "`privileged`" in result.output  # the key it cannot honour, named
    assert not list((tmp_path / "jobs").glob("*/with-services__*"))  # no trial ran


async def test_files_round_trip_and_planted_symlinks_cannot_reach_the_host(sandbox, tmp_path):
    source = tmp_path / "upload"
    (source / "nested").mkdir(parents=True)
    (source / "nested" / "x.txt").write_text("x\n")
    (source / "run.sh").write_text("#!/bin/sh\n")
    (source / "run.sh").chmod(0o755)
    await sandbox.upload_dir(source, "/tests")
    assert (await sandbox.exec("cat /tests/nested/x.txt; test -x /tests/run.sh && echo exec")).stdout.split() == ["x", "exec"]

    # The agent plants links to host paths; transfers must stay inside the sandbox.
    host_secret = tmp_path / "host-secret"
    host_secret.write_text("do not copy me")
    await sandbox.exec(f"mkdir -p /logs/verifier && ln -s {host_secret} /logs/verifier/reward.txt")
    await sandbox.exec(f"ln -s {tmp_path} /solution")
    with pytest.raises(RuntimeError, match="Could not copy files into /solution"):
        await sandbox.upload_dir(source, "/solution")  # the link dangles inside
    assert not (tmp_path / "run.sh").exists()
    out = tmp_path / "download"
    await sandbox.download_dir("/logs/verifier", out)
    assert not (out / "reward.txt").exists() or (out / "reward.txt").is_symlink() is False
    with pytest.raises(RuntimeError, match="symbolic link"):
        await sandbox.download_file("/logs/verifier/reward.txt", tmp_path / "reward.txt")

    await sandbox.upload_file(source / "run.sh", "/app/")
    await sandbox.download_file("/app/run.sh", tmp_path / "back.sh")
    assert (tmp_path / "back.sh").read_text() == "#!/bin/sh\n"


async def test_memory_limit_is_enforced(tmp_path):
    box = make_sandbox(tmp_path, memory_mb=256)
    await box.start(force_build=False)
    try:
        assert box._jail.unenforced_limits == []
        result = await box.exec(
            "python3 -c \"x = bytearray(600 * 2**20); print('allocated')\"; echo exit=$?"
        )
        assert "allocated" not in result.stdout.splitlines()  # (bash's "Killed" line quotes it)
        assert "exit=137" in result.stdout  # killed by the OOM killer
    finally:
        await box.stop(delete=True)


async def test_cpu_limit_is_enforced(tmp_path):
    box = make_sandbox(tmp_path, cpus=0.5)
    await box.start(force_build=False)
    try:
        # Half a CPU: 1.5 s of busy work takes about 3 s of wall time.
        result = await box.exec(
            "python3 -c \"import time,os\nt=time.time()\nwhile os.times().user < 1.5: pass\n"
            "print(time.time()-t)\""
        )
        assert float(result.stdout) > 2.4
    finally:
        await box.stop(delete=True)


async def test_a_sandbox_that_dies_under_a_trial_is_infrastructure_not_the_harness(tmp_path):
    """Killed from outside mid-trial (an OOM kill, another process's sweep): every later command
    fails, and the trial is read as an infrastructure error, retried, never the candidate's crash."""
    import json
    import signal

    from autoagent.evaluate.results import read_trial
    from autoagent.sandbox.environment import DIED_FILE

    box = make_sandbox(tmp_path)
    await box.start(force_build=False)
    try:
        os.kill(box._jail._init_pid, signal.SIGKILL)
        for _ in range(50):
            if not box._jail.alive():
                break
            await asyncio.sleep(0.05)
        result = await box.exec("rm -f /logs/verifier/reward.txt")
        assert result.return_code != 0 and "died" in result.stdout
    finally:
        await box.stop(delete=True)
    trial_dir = box.trial_paths.trial_dir
    assert (trial_dir / DIED_FILE).exists()
    # What Harbor then records: its verifier's RuntimeError, which alone would read as the harness's.
    (trial_dir / "result.json").write_text(json.dumps({
        "task_name": "unit", "trial_name": trial_dir.name, "task_id": {"path": "unit"},
        "exception_info": {"exception_type": "RuntimeError",
                           "exception_message": "Failed to remove verifier reward files (exit code 1)"},
    }))  # fmt: skip
    trial = read_trial(trial_dir)
    assert trial.category == "infra" and trial.error.startswith("SandboxDiedError")
