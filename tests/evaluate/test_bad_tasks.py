"""A bad task or verifier is that task's error, named; the other tasks run and are reported."""

import asyncio

import pytest

from autoagent.evaluate import evaluate
from tests.conftest import write_task

pytestmark = pytest.mark.usefixtures("needs_sandbox")

HUGE_REWARD = (
    "python3 -c \"import json; json.dump({'reward': 1, **{f'k{i}': 0 for i in range(100000)}}, "
    "open('/logs/verifier/reward.json', 'w'))\""
)


def test_bad_tasks_and_verifiers_are_their_own_errors_and_the_rest_is_reported(tmp_path):
    tasks = tmp_path / "tasks"
    write_task(tasks, "good", test="echo 1 > /logs/verifier/reward.txt")
    no_image = write_task(tasks, "no-image", test="echo 1 > /logs/verifier/reward.txt")
    (no_image / "environment" / "Dockerfile").unlink()
    write_task(tasks, "allowlist", test="echo 1 > /logs/verifier/reward.txt",
               toml='[environment]\nnetwork_mode = "allowlist"\nallowed_hosts = ["example.com"]\n')  # fmt: skip
    write_task(tasks, "huge-reward", test=HUGE_REWARD)  # over 1 MiB
    write_task(tasks, "five", test="echo 5 > /logs/verifier/reward.txt")
    write_task(tasks, "minus-three", test="echo -3 > /logs/verifier/reward.txt")
    broken = write_task(tasks, "broken-service", test="echo 1 > /logs/verifier/reward.txt")
    (broken / "environment" / "docker-compose.yaml").write_text(
        "services:\n  main: {depends_on: {init: {condition: service_completed_successfully}}}\n"
        "  init: {build: ., command: [sh, -c, 'exit 1']}\n"
    )

    result = asyncio.run(evaluate(tasks, "oracle", jobs_dir=tmp_path / "jobs"))

    by_name = {task.name: task for task in result.tasks}
    assert by_name["good"].reward == 1.0 and by_name["good"].error is None
    assert "task no-image" in by_name["no-image"].error and "no Dockerfile" in by_name["no-image"].error
    assert "task allowlist" in by_name["allowlist"].error and "allowlist" in by_name["allowlist"].error
    assert "task huge-reward" in by_name["huge-reward"].error and "KiB reward.json" in by_name["huge-reward"].error
    assert "task five" in by_name["five"].error and "outside [0, 1]" in by_name["five"].error
    assert "task minus-three" in by_name["minus-three"].error
    assert "service `init` exited with 1" in by_name["broken-service"].error  # not retried as infra
    assert result.passed == 1 and result.score == pytest.approx(1 / 7)
    assert result.errors == {"environment": 3, "verifier": 3}
