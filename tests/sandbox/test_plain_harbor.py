"""The sandbox is an ordinary Harbor environment: plain `harbor run -e ...` uses it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_TASKS

pytestmark = pytest.mark.usefixtures("needs_sandbox")


def test_harbor_run_with_the_sandbox_import_path(tmp_path):
    harbor = Path(sys.executable).parent / "harbor"
    completed = subprocess.run(
        [str(harbor), "run", "-p", str(EXAMPLE_TASKS), "-a", "oracle",
         "-e", "autoagent.sandbox:Sandbox", "-o", str(tmp_path), "--job-name", "plain", "-y", "-q"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "HARBOR_TELEMETRY": "0"},
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout + completed.stderr
    rewards = [
        json.loads(p.read_text())["verifier_result"]["rewards"]["reward"]
        for p in (tmp_path / "plain").glob("*/result.json")
    ]
    assert rewards == [1.0, 1.0, 1.0]
