"""`autoagent demo`: the README's first command, offline, with scripted models."""

import pytest
from typer.testing import CliRunner

from autoagent.cli import app
from autoagent.ledger import Ledger
from tests.conftest import flat

pytestmark = pytest.mark.usefixtures("needs_sandbox")


def test_the_demo_runs_the_loop_and_says_the_models_are_scripted(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["demo"])
    assert result.exit_code == 0, result.output
    text = flat(result.output)
    assert text.count("the figures are not a measure of any real model") == 2  # before and after
    assert text.index("SCRIPTED models") < text.index("experiment 0")
    statuses = [e.status for e in Ledger(tmp_path / "autoagent-demo").experiments()]
    assert statuses == ["baseline", "keep", "discard", "crash"]
    again = CliRunner().invoke(app, ["demo"])
    assert again.exit_code == 2 and "already exists" in flat(again.output)
