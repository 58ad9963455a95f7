"""`evaluate` and `autoagent eval` end to end, through Harbor and the sandbox."""

import asyncio
import http.server
import json
import threading

import pytest
from typer.testing import CliRunner

from autoagent.cli import app
from autoagent.evaluate import evaluate
from autoagent.evaluate.job import environment_config
from tests.conftest import EXAMPLE_TASKS, outside_address, write_task

pytestmark = pytest.mark.usefixtures("needs_sandbox")


def test_oracle_scores_one_and_json_has_the_documented_fields(tmp_path):
    out = tmp_path / "result.json"
    result = CliRunner().invoke(
        app, ["eval", "--agent", "oracle", "-k", "2", "--json", str(out), "--jobs-dir", str(tmp_path)]
    )
    assert result.exit_code == 0, result.output
    assert "score 1.000" in result.output and "passed 6/6" in result.output
    data = json.loads(out.read_text())
    assert (data["score"], data["passed"], data["total"]) == (1.0, 6, 6)
    for task in data["tasks"]:
        assert set(task) >= {"name", "reward", "error", "trial_dir"}
        assert task["reward"] == 1.0 and task["error"] is None
        assert len(task["trials"]) == 2
        assert (tmp_path / task["trial_dir"] / "result.json").exists()
    assert len(data["job_dirs"]) == 1


def test_nop_scores_zero_and_each_eval_is_a_new_job(tmp_path):
    first = asyncio.run(evaluate(EXAMPLE_TASKS, "nop", include=["hello-file"], jobs_dir=tmp_path))
    second = asyncio.run(evaluate(EXAMPLE_TASKS, "nop", include=["hello-file"], jobs_dir=tmp_path))
    assert (first.score, first.passed, first.total) == (0.0, 0, 1)
    assert first.job_dirs != second.job_dirs


def test_attempts_that_differ_by_task_run_as_one_job(tmp_path):
    """A candidate's cheap stage runs its claimed tasks twice and its canaries once: one wave of
    trials, not one job per attempt count waiting on the other."""
    wanted = {"hello-file": 2, "word-count": 1}
    result = asyncio.run(evaluate(EXAMPLE_TASKS, "oracle", include=list(wanted), attempts=wanted,
                                  jobs_dir=tmp_path))  # fmt: skip
    assert len(result.job_dirs) == 1
    assert {task.name: len(task.trials) for task in result.tasks} == wanted
    assert result.passed == 3


def test_errors_count_as_zero_in_the_score(tmp_path):
    tasks = tmp_path / "tasks"
    write_task(tasks, "solved", test="echo 1 > /logs/verifier/reward.txt")
    write_task(tasks, "broken-verifier", test="exit 0")
    write_task(tasks, "broken-toml", test="true", toml="[agent\n")
    result = asyncio.run(evaluate(tasks, "oracle", jobs_dir=tmp_path / "jobs"))
    assert result.total == 3 and result.passed == 1
    assert result.score == pytest.approx(1 / 3)
    assert result.errors == {"verifier": 1, "task": 1}


class FlakyHealth(http.server.BaseHTTPRequestHandler):
    """Unhealthy for the first request, healthy after: an infrastructure hiccup."""

    calls = 0

    def do_GET(self):
        FlakyHealth.calls += 1
        self.send_response(500 if FlakyHealth.calls == 1 else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_infrastructure_failures_are_retried_and_counted(tmp_path):
    server = http.server.HTTPServer((outside_address(), 0), FlakyHealth)  # the sandbox's outside
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    tasks = tmp_path / "tasks"
    health = (
        "[environment.healthcheck]\nretries = 1\ninterval_sec = 0.1\n"
        f"command = \"python3 -c 'import urllib.request; urllib.request.urlopen(\\\"http://{server.server_address[0]}:{port}/\\\")'\"\n"
    )
    write_task(tasks, "flaky", test="echo 1 > /logs/verifier/reward.txt", toml=health)
    try:
        result = asyncio.run(evaluate(tasks, "oracle", jobs_dir=tmp_path / "jobs"))
    finally:
        server.shutdown()
    assert (result.score, result.errors) == (1.0, {})
    assert len(result.retried) == 1 and len(result.job_dirs) == 2
    failed = json.loads((tmp_path / "jobs" / result.retried[0] / "result.json").read_text())
    assert failed["exception_info"]["exception_type"] == "HealthcheckError"


def test_persistent_infrastructure_failures_end_as_errors(tmp_path):
    tasks = tmp_path / "tasks"
    toml = '[environment.healthcheck]\nretries = 1\ninterval_sec = 0.1\ncommand = "false"\n'
    write_task(tasks, "never-healthy", test="echo 1 > /logs/verifier/reward.txt", toml=toml)
    result = asyncio.run(
        evaluate(tasks, "oracle", attempts=2, jobs_dir=tmp_path / "jobs", infra_retries=1)
    )
    assert (result.score, result.total, result.errors) == (0.0, 2, {"infra": 2})
    assert len(result.retried) == 2  # both attempts ran again, in one retry job


def test_other_environments_pass_through_untouched():
    assert environment_config("docker").type.value == "docker"
    assert environment_config("modal", {"region": "x"}).kwargs == {"region": "x"}
    assert environment_config("pkg.mod:Env").import_path == "pkg.mod:Env"
    with pytest.raises(ValueError, match="Unknown environment 'dockr'"):
        environment_config("dockr")
