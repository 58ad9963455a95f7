from autoagent import workspace
from autoagent.history import History


def test_candidates_keep_and_restore(tmp_path):
    ws = workspace.init(tmp_path / "ws")
    history = History(ws.root)
    base = history.head()
    (ws.root / "program.md").write_text("the human's own edit\n")  # not ours to touch
    ws.harness.write_text(ws.harness.read_text().replace("MAX_TURNS = 30", "MAX_TURNS = 5"))
    (ws.root / ".agent" / "new.md").write_text("a note\n")
    assert history.harness_changed()
    first = history.commit_candidate(1, "Experiment 1: fewer turns")
    assert history.head() == base  # the branch does not move for a candidate
    assert history.candidate(1) == first
    history.restore()
    assert "MAX_TURNS = 30" in ws.harness.read_text() and not (ws.root / ".agent" / "new.md").exists()
    assert not history.harness_changed()
    assert (ws.root / "program.md").read_text() == "the human's own edit\n"
    history.keep(first)
    assert history.head() == first and "MAX_TURNS = 5" in ws.harness.read_text()
    assert (ws.root / ".agent" / "new.md").exists()
    assert "-MAX_TURNS = 30" in history.diff(base, first)


def test_set_aside_keeps_a_patch(tmp_path):
    ws = workspace.init(tmp_path / "ws")
    history = History(ws.root)
    ws.harness.write_text(ws.harness.read_text().replace("MAX_TURNS = 30", "MAX_TURNS = 7"))
    patch = history.set_aside(ws.root / ".autoagent" / "set-aside")
    assert "+MAX_TURNS = 7" in patch.read_text()
    assert "MAX_TURNS = 30" in ws.harness.read_text()
