"""Compose tasks: the services beside main run, each in a sandbox of its own sharing main's
network; what the sandbox cannot honour fails when the task loads, naming what."""

import asyncio
import subprocess
import sys

import pytest
from harbor.models.task.config import EnvironmentConfig, NetworkMode, NetworkPolicy
from harbor.models.trial.paths import TrialPaths

from autoagent.evaluate import check
from autoagent.sandbox import Sandbox, SandboxUnavailableError
from autoagent.sandbox.compose_file import ComposeError, load
from autoagent.sandbox.services import ServiceError
from tests.conftest import outside_address, write_task
from tests.sandbox.test_environment import make_sandbox

pytestmark = pytest.mark.usefixtures("needs_sandbox")

MAIN_DOCKERFILE = "FROM debian:bookworm-slim\nWORKDIR /app\n"
SERVER = "FROM debian:bookworm-slim\nCOPY serve.sh /serve.sh\nCMD [\"sh\", \"/serve.sh\"]\n"
# A one-line HTTP server in the host's python3 (the stand-in userland): answers with $WORD.
SERVE = (
    "exec python3 -c \"import http.server as h, os\n"
    "class H(h.BaseHTTPRequestHandler):\n"
    "  def do_GET(s): s.send_response(200); s.end_headers(); s.wfile.write(os.environ['WORD'].encode())\n"
    "h.HTTPServer(('0.0.0.0', int(os.environ['PORT'])), H).serve_forever()\"\n"
)
FETCH = "python3 -c \"import urllib.request; print(urllib.request.urlopen('{url}', timeout=5).read().decode())\""


def compose_sandbox(tmp_path, compose: str, files: dict[str, str] | None = None, **kwargs) -> Sandbox:
    return make_sandbox(tmp_path, MAIN_DOCKERFILE,
                        files={"docker-compose.yaml": compose, **(files or {})}, **kwargs)  # fmt: skip


async def test_services_reach_each_other_by_name_and_share_named_volumes(tmp_path):
    box = compose_sandbox(tmp_path, """
services:
  main:
    depends_on:
      seed: {condition: service_completed_successfully}
      api: {condition: service_healthy}
    volumes: ["shared:/shared"]
  seed:
    build: ./server
    command: ["sh", "-c", "echo seeded-by-$$(hostname) > /data/seed.txt"]
    volumes: ["shared:/data"]
  api:
    build: {context: ./server}
    environment: {WORD: "${GREETING:-hello}", PORT: "8080"}
    healthcheck:
      test: ["CMD-SHELL", "python3 -c \\"import urllib.request; urllib.request.urlopen('http://localhost:8080')\\""]
      interval: 1s
      start_period: 10s
      start_interval: 200ms
volumes:
  shared: {}
""", files={"server/Dockerfile": SERVER, "server/serve.sh": SERVE}, env={"GREETING": "hi"})
    await box.start(force_build=False)
    try:
        assert (await box.exec("cat /shared/seed.txt")).stdout.strip() == "seeded-by-seed"
        # GREETING from task.toml's env, interpolated into the service's environment.
        assert (await box.exec(FETCH.format(url="http://api:8080/"))).stdout.strip() == "hi"
        # A command in the service itself, as `docker compose exec api ...`.
        inside = await box.service_exec("hostname; echo $WORD > /tmp/word", service="api")
        assert inside.stdout.split() == ["api"]
        await box.service_download_file("/tmp/word", tmp_path / "word", service="api")
        assert (tmp_path / "word").read_text() == "hi\n"
    finally:
        await box.stop(delete=True)
    assert (await box.service_exec("true", service="api")).return_code != 0


async def test_a_no_network_phase_cuts_the_services_too(tmp_path):
    address = outside_address()
    server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", address],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)  # fmt: skip
    try:
        port = server.stdout.readline().split("port ")[1].split()[0]
        box = compose_sandbox(tmp_path, "services:\n  daemon:\n    build: ./server\n"
                              "    environment: {WORD: x, PORT: '8080'}\n",
                              files={"server/Dockerfile": SERVER, "server/serve.sh": SERVE})  # fmt: skip
        await box.start(force_build=False)
        try:
            probe = FETCH.format(url=f"http://{address}:{port}/") + " >/dev/null 2>&1 && echo reached || echo blocked"
            assert (await box.service_exec(probe, service="daemon")).stdout.strip() == "reached"
            await box.set_network_policy(NetworkPolicy(network_mode=NetworkMode.NO_NETWORK))
            assert (await box.service_exec(probe, service="daemon")).stdout.strip() == "blocked"
            assert (await box.exec(FETCH.format(url="http://daemon:8080/"))).stdout.strip() == "x"
        finally:
            await box.stop(delete=True)
    finally:
        server.kill()
        server.wait()


async def test_a_service_that_exits_before_it_is_healthy_fails_the_start_naming_it(tmp_path):
    box = compose_sandbox(tmp_path, """
services:
  main:
    depends_on: {db: {condition: service_healthy}}
  db:
    build: ./server
    command: ["sh", "-c", "echo cannot start; exit 3"]
    healthcheck: {test: "true", interval: 1s}
""", files={"server/Dockerfile": SERVER, "server/serve.sh": SERVE})
    with pytest.raises(ServiceError, match=r"service `db` exited before it became healthy \(see service-db.log\)"):
        await box.start(force_build=False)
    await box.stop(delete=True)
    assert (box.trial_paths.trial_dir / "service-db.log").read_text().strip() == "cannot start"


async def test_start_waits_as_compose_up_wait_does_for_services_nobody_depends_on(tmp_path):
    """Harbor starts a Compose task with `docker compose up --wait`: every service with a
    healthcheck is healthy before the agent starts, whether or not main depends on it."""
    box = compose_sandbox(tmp_path, """
services:
  slow:
    build: ./server
    command: ["sh", "-c", "sleep 1; touch /tmp/ready; exec sleep infinity"]
    healthcheck: {test: "test -f /tmp/ready", interval: 200ms, start_period: 10s, start_interval: 200ms}
""", files={"server/Dockerfile": SERVER, "server/serve.sh": SERVE})
    await box.start(force_build=False)
    try:
        assert (await box.service_exec("test -f /tmp/ready", service="slow")).return_code == 0
    finally:
        await box.stop(delete=True)


async def test_a_service_whose_user_does_not_exist_fails_the_start_naming_it(tmp_path):
    box = compose_sandbox(tmp_path, "services:\n  gone:\n    build: ./server\n    user: nobody-here\n",
                          files={"server/Dockerfile": SERVER, "server/serve.sh": SERVE})  # fmt: skip
    try:
        with pytest.raises(ServiceError, match="service `gone`: user 'nobody-here' does not exist"):
            await box.start(force_build=False)
    finally:
        await box.stop(delete=True)


async def test_a_new_named_volume_is_owned_as_the_image_has_its_mount_point(tmp_path):
    """A service running as its own user writes into a volume mounted where its image has a
    directory that user owns (a database's data directory), as under Docker."""
    writer = (
        "FROM debian:bookworm-slim\n"
        "RUN useradd --create-home svc && mkdir -p /data && chown svc /data\nUSER svc\n"
        'CMD ["sh", "-c", "echo written-by-$(id -un) > /data/out; exec sleep infinity"]\n'
    )
    box = compose_sandbox(tmp_path, """
services:
  main:
    volumes: ["data:/shared"]
  writer:
    build: ./writer
    volumes: ["data:/data"]
    healthcheck: {test: "test -f /data/out", interval: 200ms, start_period: 3s, start_interval: 200ms, retries: 2}
volumes:
  data: {}
""", files={"writer/Dockerfile": writer})
    try:
        await box.start(force_build=False)
        assert (await box.exec("cat /shared/out")).stdout.strip() == "written-by-svc"
    finally:
        await box.stop(delete=True)


async def test_user_mounts_are_bound_as_given(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "input.txt").write_text("from the host\n")
    environment = tmp_path / "env"
    environment.mkdir()
    (environment / "Dockerfile").write_text(MAIN_DOCKERFILE)
    box = Sandbox(environment, "mounts", "mounts__env", TrialPaths(tmp_path / "trial"), EnvironmentConfig(),
                  mounts=[{"type": "bind", "source": str(data), "target": "/mnt/data", "read_only": True}])
    await box.start(force_build=False)
    try:
        assert (await box.exec("cat /mnt/data/input.txt")).stdout == "from the host\n"
        assert (await box.exec("touch /mnt/data/new")).return_code != 0  # read-only, as asked
    finally:
        await box.stop(delete=True)


@pytest.mark.parametrize(("compose", "message"), [
    ("services:\n  db: {image: postgres, privileged: true}\n", "service `db`: `privileged` is not supported"),
    ("services:\n  db: {image: postgres, volumes: ['/etc:/host-etc']}\n", "/etc is outside the task's environment"),
    ("services:\n  db: {image: postgres, network_mode: host}\n", "service `db`: `network_mode` is not supported"),
    ("services:\n  main: {command: serve}\n", "service `main`: `command` is Harbor's own"),
    ("services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n", "in a cycle"),
    ("services:\n  main: {depends_on: [nowhere]}\n", "depends on `nowhere`, which is not a service"),
    ("services:\n  db: {image: x}\nsecrets: {k: {file: ./k}}\n", "top-level `secrets` is not supported"),
    ("services:\n  db: {image: '${TAG:?set TAG}'}\n", "TAG is required: set TAG"),
    ("services:\n  db: {image: x, user: '1000:0'}\n", "a user with a group other than its own (1000:0)"),
])  # fmt: skip
def test_what_the_sandbox_cannot_honour_fails_when_the_task_loads(tmp_path, compose, message):
    environment = tmp_path / "env"
    environment.mkdir()
    (environment / "Dockerfile").write_text(MAIN_DOCKERFILE)
    (environment / "docker-compose.yaml").write_text(compose)
    with pytest.raises(SandboxUnavailableError, match="docker-compose.yaml: ") as raised:
        Sandbox(environment, "compose", "c__env", TrialPaths(tmp_path / "trial"), EnvironmentConfig())
    assert message in str(raised.value)


def test_interpolation_is_composes_and_never_reads_the_hosts_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-host-secret")
    (tmp_path / ".env").write_text("TAG=3.12\n# a comment\nEMPTY=\n")
    (tmp_path / "docker-compose.yaml").write_text("""
services:
  db:
    image: "python:${TAG}-slim"
    environment:
      - KEY=${OPENAI_API_KEY}
      - DEFAULTED=${EMPTY:-fallback}
      - ONLY_UNSET=${EMPTY-kept-empty}
      - ALTERNATIVE=${TAG:+set}
      - DOLLAR=$$HOME
      - CONTEXT=${CONTEXT_DIR}
    user: "1000:1000"
""")
    project = load(tmp_path)
    (db,) = project.services
    assert (db.image, db.user) == ("python:3.12-slim", "1000")
    assert db.environment == {"KEY": "", "DEFAULTED": "fallback", "ONLY_UNSET": "",
                              "ALTERNATIVE": "set", "DOLLAR": "$HOME", "CONTEXT": str(tmp_path)}  # fmt: skip
    with pytest.raises(ComposeError, match="invalid interpolation"):
        (tmp_path / "docker-compose.yaml").write_text("services:\n  db: {image: '${a b}'}\n")
        load(tmp_path)


def test_check_names_a_failing_service_and_shows_no_score_for_agents_that_never_ran(tmp_path):
    tasks = tmp_path / "tasks"
    task = write_task(tasks, "broken-service", test="echo 1 > /logs/verifier/reward.txt")
    (task / "environment" / "docker-compose.yaml").write_text(
        "services:\n  main: {depends_on: {init: {condition: service_completed_successfully}}}\n"
        "  init: {build: ., command: [sh, -c, 'exit 1']}\n"
    )
    (finding,) = asyncio.run(check(tasks, n_concurrent=2, jobs_dir=tmp_path / "jobs"))
    assert (finding.oracle, finding.nop) == (None, None)
    (problem,) = finding.problems
    assert "service `init` exited with 1" in problem
