"""Harbor's example tasks as a conformance suite: our own tasks in Harbor's format, one per
feature of its example family (tests/data/tasks: hello-*, multi-step, a separate verifier,
the network-policy matrix), run by the real `harbor run` with the sandbox. The oracle must
score 1 and doing nothing 0 on each, by task name; a task the sandbox cannot honour must
be refused as it loads, saying why."""

import json
import os
import secrets
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.conftest import flat, outside_address

pytestmark = pytest.mark.usefixtures("needs_sandbox")

TASKS = Path(__file__).resolve().parent.parent / "data" / "tasks"
REFUSED = "network-allowlist"  # Harbor ends the whole job when a trial fails to load
EXAMPLES = sorted(
    p.name for p in TASKS.iterdir() if (p / "task.toml").exists() and p.name != REFUSED
)


@pytest.fixture(scope="module")
def probe():
    """The outside the network tasks reach for: a server on this host, beyond the sandbox,
    serving a token only the verifiers are told (PROBE_URL and PROBE_TOKEN, which the
    tasks' task.toml take from the host's environment)."""
    token = secrets.token_hex(8)

    class Token(BaseHTTPRequestHandler):
        def do_GET(self):
            body = token.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer((outside_address(), 0), Token)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    host, port = server.server_address[:2]
    try:
        yield {"PROBE_URL": f"http://{host}:{port}/", "PROBE_TOKEN": token}
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def harbor_run(path: Path, agent: str, jobs: Path, env: dict[str, str], *flags: str):
    harbor = Path(sys.executable).parent / "harbor"
    return subprocess.run(
        [str(harbor), "run", "-p", str(path), "-a", agent, "-e", "autoagent.sandbox:Sandbox",
         "-o", str(jobs), "--job-name", agent, "-n", "2", "-y", "-q", *flags],
        capture_output=True, text=True, timeout=300, cwd=jobs,
        env={**os.environ, "HARBOR_TELEMETRY": "0", **env},
    )  # fmt: skip


@pytest.fixture(scope="module")
def outcomes(probe, tmp_path_factory):
    """agent -> task name -> (reward, exception); one job per agent over all the tasks."""
    jobs = tmp_path_factory.mktemp("examples")
    found = {}
    for agent in ("oracle", "nop"):
        completed = harbor_run(TASKS, agent, jobs, probe, "-x", REFUSED)
        assert completed.returncode == 0, completed.stdout + completed.stderr
        found[agent] = {}
        for path in (jobs / agent).glob("*/result.json"):
            result = json.loads(path.read_text())
            reward = (result["verifier_result"] or {}).get("rewards", {}).get("reward")
            error = (result["exception_info"] or {}).get("exception_message")
            found[agent][result["task_name"]] = (reward, error)
    return found


@pytest.mark.parametrize("task", EXAMPLES)
def test_the_oracle_scores_one_and_doing_nothing_zero(outcomes, task):
    assert outcomes["oracle"][task] == (1.0, None)
    assert outcomes["nop"][task] == (0.0, None)


def test_each_job_ran_every_example(outcomes):
    assert sorted(outcomes["oracle"]) == sorted(outcomes["nop"]) == EXAMPLES


def test_an_allowlist_the_sandbox_cannot_enforce_is_refused_at_load(tmp_path):
    completed = harbor_run(TASKS / REFUSED, "oracle", tmp_path, {})
    assert completed.returncode != 0
    # Harbor's traceback panel frames each line in box characters.
    said = flat(completed.stdout + completed.stderr.replace("│", " "))
    assert (
        "ValueError: network_mode='allowlist' is not supported by autoagent-sandbox "
        "environment. Environment providers must enforce the requested network policy "
        "or reject the task." in said
    )
    # Refused before anything ran: the oracle never started, no verifier either.
    (trial,) = (tmp_path / "oracle").glob(f"{REFUSED}__*")
    assert not any(trial.rglob("oracle.txt")) and not any(trial.rglob("reward.txt"))
