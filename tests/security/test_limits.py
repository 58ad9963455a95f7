"""Limits and what the sandbox shows of the host: a process cap per trial, a minimal /etc."""

import asyncio
import uuid
from pathlib import Path

import pytest

from autoagent.evaluate import evaluate
from tests.conftest import write_task
from tests.sandbox.test_environment import make_sandbox

pytestmark = pytest.mark.usefixtures("needs_sandbox")

# A fork bomb that stops by itself: a true one would take this shared machine down on
# code without the limit. It starts sleepers until the kernel refuses, counts them,
# holds them while the other trial runs, then lets them go so its verifier can run.
BOMB = """python3 - <<'EOF'
import os, signal, time
children = []
try:
    while len(children) < 3000:
        children.append(os.posix_spawn("/bin/sleep", ["sleep", "60"], {}))
except OSError:
    pass
open("/tmp/started", "w").write(str(len(children)))
time.sleep(8)
for pid in children:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
EOF"""


def test_a_fork_bomb_is_held_to_its_own_trial(tmp_path):
    tasks = tmp_path / "tasks"
    write_task(tasks, "bomb", solve=BOMB, test=(
        'n=$(cat /tmp/started); echo "started $n"\n'
        'if [ "$n" -lt 400 ]; then echo 1; else echo 0; fi > /logs/verifier/reward.txt'
    ))  # fmt: skip
    write_task(tasks, "normal", solve="sleep 3; for i in $(seq 50); do /bin/true & done; wait; echo ok > /app/out",
               test='grep -q ok /app/out && echo 1 > /logs/verifier/reward.txt')  # fmt: skip
    result = asyncio.run(evaluate(
        tasks, "oracle", jobs_dir=tmp_path / "jobs", n_concurrent=2, environment_kwargs={"pids": 300},
    ))  # fmt: skip
    rewards = {task.name: task.reward for task in result.tasks}
    assert rewards == {"bomb": 1.0, "normal": 1.0}, result.to_json()


@pytest.fixture
def host_etc_secret():
    """A credential in the host's /etc that only root may read, as many packages leave."""
    path = Path("/etc") / f"autoagent-test-credential-{uuid.uuid4().hex}"
    path.write_text(f"token-{uuid.uuid4().hex}\n")
    path.chmod(0o600)
    try:
        yield path
    finally:
        path.unlink(missing_ok=True)


async def test_host_credentials_in_etc_stay_out_and_pip_still_works(tmp_path, host_etc_secret):
    box = make_sandbox(tmp_path)
    await box.start(force_build=False)
    try:
        result = await box.exec(f"cat {host_etc_secret}; cat /etc/shadow /etc/gshadow; ls -A /etc/ssl/private")
        output = (result.stdout or "") + (result.stderr or "")
        assert host_etc_secret.read_text().strip() not in output
        assert "No such file" in output
        shadow = [line.split(":") for line in (await box.exec("cat /etc/shadow")).stdout.splitlines()]
        assert shadow and all(fields[1] == "*" for fields in shadow)  # every password locked
        assert {fields[0] for fields in shadow} >= {"root"}
        # What apt, pip and DNS need is still there: the resolver, CA bundle, pip config.
        pip = await box.exec("python3 -m pip download --no-deps --quiet -d /tmp/wheels six && ls /tmp/wheels",
                             timeout_sec=120)  # fmt: skip
        assert pip.return_code == 0 and "six" in pip.stdout, pip.stderr
        assert (await box.exec("useradd -m worker && id -u worker")).return_code == 0
    finally:
        await box.stop(delete=True)
