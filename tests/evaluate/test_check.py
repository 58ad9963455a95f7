"""`check` end to end, through Harbor and the sandbox, on tasks written to be broken."""

import asyncio
import json

import pytest
from typer.testing import CliRunner

from autoagent.cli import app
from autoagent.evaluate import check
from tests.conftest import write_task

pytestmark = pytest.mark.usefixtures("needs_sandbox")

GRADE_ANSWER = (
    'if [ "$(cat /app/answer.txt 2>/dev/null)" = 42 ]; then echo 1; else echo 0; fi'
    " > /logs/verifier/reward.txt"
)


@pytest.fixture(scope="module")
def broken_tasks(tmp_path_factory):
    root = tmp_path_factory.mktemp("tasks")
    write_task(root, "sound", test=GRADE_ANSWER, solve="echo 42 > /app/answer.txt")
    write_task(root, "passes-idle", test="echo 1 > /logs/verifier/reward.txt")
    write_task(root, "solution-fails", test=GRADE_ANSWER, solve="echo 41 > /app/answer.txt")
    write_task(root, "malformed-toml", test=GRADE_ANSWER, toml="[verifier\n")
    write_task(root, "no-tests", test=None)
    write_task(root, "no-reward", test="echo 'forgot the reward'")
    write_task(root, "word-reward", test="echo high > /logs/verifier/reward.txt")
    write_task(
        root, "copy-from", test=GRADE_ANSWER,
        dockerfile="FROM debian:bookworm-slim\nCOPY --from=builder /out /app\n",
    )  # fmt: skip
    write_task(
        root, "loud-verifier", solve="echo 42 > /app/answer.txt",
        test="head -c 100000000 /dev/zero | tr '\\0' 'x'; echo; " + GRADE_ANSWER,
    )  # fmt: skip
    return root


@pytest.fixture(scope="module")
def findings(broken_tasks, tmp_path_factory):
    jobs = tmp_path_factory.mktemp("jobs")
    return {f.name: f for f in asyncio.run(check(broken_tasks, n_concurrent=4, jobs_dir=jobs))}


def test_a_sound_task_passes_among_broken_ones(findings):
    assert findings["sound"].sound
    assert (findings["sound"].oracle, findings["sound"].nop) == (1.0, 0.0)


def test_verifier_that_passes_without_work_is_flagged(findings):
    assert findings["passes-idle"].problems == ["doing nothing scores 1, above 0"]


def test_reference_solution_that_fails_is_flagged(findings):
    assert findings["solution-fails"].problems == ["reference solution scores 0, not 1"]


def test_a_dockerfile_the_sandbox_cannot_honour_is_flagged_without_running(findings):
    (problem,) = findings["copy-from"].problems
    assert "copy-from/environment/Dockerfile: line 2 (COPY --from=builder /out /app)" in problem
    assert findings["copy-from"].oracle_trial_dir == ""


def test_invalid_tasks_are_flagged_without_running(findings):
    assert "task.toml is not valid TOML" in findings["malformed-toml"].problems[0]
    assert "does not contain tests/test.sh" in findings["no-tests"].problems[0]
    assert findings["malformed-toml"].oracle_trial_dir == ""


def test_verifier_output_problems_say_what_went_wrong(findings):
    assert "RewardFileNotFoundError" in findings["no-reward"].problems[0]
    assert "reward.txt" in findings["no-reward"].problems[0]
    assert "VerifierOutputParseError" in findings["word-reward"].problems[0]


def test_a_verifier_printing_100_mb_still_grades_and_its_log_is_cut(findings):
    loud = findings["loud-verifier"]
    assert loud.sound
    log = loud.oracle_trial_dir + "/verifier/test-stdout.txt"
    with open(log, "rb") as file:
        content = file.read()
    assert len(content) < 3 * 2**20
    assert b"autoagent cut" in content


def test_cli_exit_status_and_json(broken_tasks, tmp_path):
    out = tmp_path / "findings.json"
    result = CliRunner().invoke(
        app,
        ["check", str(broken_tasks), "-i", "sound", "-i", "passes-idle", "--json", str(out),
         "--jobs-dir", str(tmp_path / "jobs")],
    )  # fmt: skip
    assert result.exit_code == 1, result.output
    assert "1 of 2 tasks are unsound" in result.output
    assert "doing nothing scores 1, above 0" in result.output
    data = {f["name"]: f for f in json.loads(out.read_text())}
    assert data["sound"]["sound"] is True and data["passes-idle"]["sound"] is False

    sound_only = CliRunner().invoke(
        app, ["check", str(broken_tasks), "-i", "sound", "--jobs-dir", str(tmp_path / "jobs")]
    )
    assert sound_only.exit_code == 0, sound_only.output
    assert "All 1 tasks are sound" in sound_only.output
