from autoagent import guard
from autoagent.workspace import TEMPLATES

BASELINE = (TEMPLATES / "agent.py").read_text()


def test_the_template_has_one_boundary_and_passes_every_check(tmp_path):
    assert guard.fixed_part(BASELINE).startswith("# ====")
    (tmp_path / "agent.py").write_text(BASELINE)
    assert guard.harness_problem(tmp_path, BASELINE, ["csv-total", "regex-log"]) is None


def test_edits_above_the_boundary_are_fine_below_are_not():
    above = BASELINE.replace("MAX_TURNS = 30", "MAX_TURNS = 50")
    assert guard.boundary_problem(above, BASELINE) is None
    below = BASELINE.replace('return "autoagent"', 'return "other"')
    assert "must stay byte-identical" in guard.boundary_problem(below, BASELINE)
    doubled = BASELINE.replace("# -- tools", "# ===== FIXED ADAPTER BOUNDARY =====\n# -- tools")
    assert "exactly one" in guard.boundary_problem(doubled, BASELINE)
    removed = BASELINE.replace("FIXED ADAPTER BOUNDARY", "BOUNDARY")
    assert "exactly one" in guard.boundary_problem(removed, BASELINE)


def test_task_names_and_verifier_files_are_caught():
    assert "names the task 'csv-total'" in guard.naming_problem("if 'csv-total' in x: ...", ["csv-total"])
    assert guard.naming_problem("a csv-totals helper", ["csv-total"]) is None  # a different word
    assert "'/tests'" in guard.naming_problem("open('/tests/test_outputs.py')", [])
    assert "'/logs/verifier'" in guard.naming_problem("cat /logs/verifier/x", [])
    assert "reward.txt" in guard.naming_problem("echo 1 > reward.txt", [])
    assert guard.naming_problem("see /logs/agent/outputs", []) is None


def test_agent_dir_files_are_checked_too(tmp_path):
    (tmp_path / "agent.py").write_text(BASELINE)
    (tmp_path / ".agent").mkdir()
    (tmp_path / ".agent" / "notes.md").write_text("For regex-log, use a lookahead.\n")
    problem = guard.harness_problem(tmp_path, BASELINE, ["regex-log"])
    assert problem == ".agent/notes.md names the task 'regex-log': a harness must not know the tasks"
