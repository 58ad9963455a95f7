"""Several candidates in flight: each in its own worktree from its own parent; a winner whose parent
is no longer the best is composed onto the best and judged again. Real git, sandboxes, Harbor;
scripted models. Which of two simultaneous candidates lands first is left to chance: the
assertions hold either way."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from autoagent import workspace
from autoagent.compose import compose
from autoagent.history import History
from autoagent.ledger import Ledger
from autoagent.strategies.budget import Budget
from tests.conftest import write_task
from tests.test_faults_loop import assert_ledger_agrees, run
from tests.test_loop import submit, tool, write_script

FIRST_LINE = "You are a capable software engineer working in a Linux sandbox to complete a task."
LAST_LINE = "When the task is complete, reply with a short summary and no tool call."


def solves(skill: str) -> list[dict]:
    """A task the scripted model solves only when the system prompt names `skill`."""
    return [{"match": f"Task {skill}\\.", "system": f"{skill.upper()}-SKILL",
             "turns": [tool("bash", command="echo ok > /app/out"), {"content": "done"}]}]  # fmt: skip


def edit(n: int, old: str, new: str, description: str, flips: list[str]) -> dict:
    return {"match": f"^# Experiment {n}:", "turns": [
        tool("edit_file", path="agent.py", old_text=old, new_text=new), submit(description, flips)]}  # fmt: skip


def two_skills_workspace(tmp_path: Path, scripts: Path, task_script: list[dict], meta: list[dict]):
    """Tasks alpha and beta (solved only with their skill in the prompt) and steady (always)."""
    write_script(scripts, "task", task_script + [
        {"match": "Task steady\\.", "turns": [tool("bash", command="echo ok > /app/out"), {"content": "done"}]},
        {"match": ".", "turns": [{"content": "I cannot."}]},
    ])  # fmt: skip
    write_script(scripts, "meta", meta)
    for name in ("alpha", "beta", "steady"):
        write_task(tmp_path / "tasks", name, test="grep -q ok /app/out && echo 1 > /logs/verifier/reward.txt "
                                                  "|| echo 0 > /logs/verifier/reward.txt")  # fmt: skip
    ws = workspace.init(tmp_path / "ws", str(tmp_path / "tasks"), model="scripted/task")
    toml = ws.root / "autoagent.toml"  # the reference rule, one baseline run: the loop's mechanics
    toml.write_text(toml.read_text().replace('gate = "paired"', 'gate = "reference"')
                    .replace("baseline_attempts = 2", "baseline_attempts = 1"))  # fmt: skip
    History(ws.root).git("commit", "-qam", "the reference rule")
    return workspace.Workspace(ws.root)  # its settings read afresh


def verdicts(ws) -> dict[int, str]:
    return {e.id: e.status for e in Ledger(ws.root).experiments()}


def assert_tidy(ws, set_aside: int = 0) -> None:
    """Every experiment decided, the ledger and results.tsv agree, no worktree left, nothing set
    aside but the unfinished proposals, the workspace's harness is the best's."""
    assert len(list((ws.root / ".autoagent" / "set-aside").glob("*.patch"))) == set_aside
    ledger = Ledger(ws.root)
    assert all(e.final for e in ledger.experiments())
    assert_ledger_agrees(ws.root)
    history = History(ws.root)
    assert history.git("worktree", "list", "--porcelain").count("worktree ") == 1
    assert not list((ws.root / ".autoagent" / "worktrees").glob("*"))
    assert history.head() == ledger.best().commit
    assert history.git("status", "--porcelain", "--", "agent.py", ".agent") == ""


pytestmark = pytest.mark.usefixtures("needs_sandbox")


def test_two_fixes_proposed_at_once_compose_and_both_are_kept(tmp_path, scripts, monkeypatch):
    ws = two_skills_workspace(tmp_path, scripts, solves("alpha") + solves("beta"), [
        edit(1, FIRST_LINE, FIRST_LINE + " ALPHA-SKILL.", "Alpha skill", ["alpha"]),
        edit(2, LAST_LINE, "BETA-SKILL. " + LAST_LINE, "Beta skill", ["beta"]),
    ])
    monkeypatch.chdir(ws.root)
    reason = run(ws, meta_model="scripted/meta", budget=Budget(iterations=2), candidates=2, retry_wait_sec=0.01)
    assert reason == "2 iterations done (--iterations 2)"
    experiments = {e.id: e for e in Ledger(ws.root).experiments()}
    assert experiments[1].parent_id == experiments[2].parent_id == 0  # both proposed from the baseline
    first = 1 if experiments[1].status == "keep" else 2
    second = 3 - first
    assert experiments[first].status == "keep"
    assert experiments[second].status == "superseded"
    assert "composed onto experiment" in experiments[second].reason
    composition = experiments[3]
    assert (composition.composed_from, composition.parent_id, composition.status) == (second, first, "keep")
    assert composition.passed == 3 and experiments[0].passed == 1
    harness = (ws.root / "agent.py").read_text()
    assert "ALPHA-SKILL" in harness and "BETA-SKILL" in harness  # both fixes, in the branch
    history = History(ws.root)
    assert history.git("rev-parse", f"{composition.commit}^1") == experiments[first].commit
    assert history.git("rev-parse", f"{composition.commit}^2") == experiments[second].commit
    assert_tidy(ws)


def test_two_candidates_that_conflict_end_with_one_kept_and_the_other_superseded(tmp_path, scripts, monkeypatch):
    ws = two_skills_workspace(tmp_path, scripts, solves("alpha") + solves("beta"), [
        edit(1, FIRST_LINE, FIRST_LINE + " ALPHA-SKILL.", "Alpha skill", ["alpha"]),
        edit(2, FIRST_LINE, FIRST_LINE + " BETA-SKILL.", "Beta skill", ["beta"]),
    ])
    monkeypatch.chdir(ws.root)
    run(ws, meta_model="scripted/meta", budget=Budget(iterations=2), candidates=2, retry_wait_sec=0.01)
    experiments = {e.id: e for e in Ledger(ws.root).experiments()}
    assert sorted(e.status for e in experiments.values()) == ["baseline", "keep", "superseded"]
    kept = next(e for e in experiments.values() if e.status == "keep")
    superseded = next(e for e in experiments.values() if e.status == "superseded")
    assert "conflicts with the best's in agent.py" in superseded.reason
    assert History(ws.root).head() == kept.commit
    assert_tidy(ws)


def test_a_candidate_that_wins_against_a_stale_parent_but_loses_in_composition_is_not_kept(
        tmp_path, scripts, monkeypatch):  # fmt: skip
    both = "ALPHA-SKILL[\\s\\S]*BETA-SKILL"  # together the two prompts confuse the model: it fails all
    fails_together = [{"match": ".", "system": both, "turns": [{"content": "I am confused."}]}]
    ws = two_skills_workspace(tmp_path, scripts, fails_together + solves("alpha") + solves("beta"), [
        edit(1, FIRST_LINE, FIRST_LINE + " ALPHA-SKILL.", "Alpha skill", ["alpha"]),
        edit(2, LAST_LINE, "BETA-SKILL. " + LAST_LINE, "Beta skill", ["beta"]),
    ])
    monkeypatch.chdir(ws.root)
    run(ws, meta_model="scripted/meta", budget=Budget(iterations=2), candidates=2, retry_wait_sec=0.01)
    experiments = {e.id: e for e in Ledger(ws.root).experiments()}
    kept = [e for e in experiments.values() if e.status == "keep"]
    assert len(kept) == 1  # the first to land; the other won against the baseline only
    superseded = next(e for e in experiments.values() if e.status == "superseded")
    composition = experiments[3]
    assert composition.composed_from == superseded.id and composition.status == "discard"
    harness = (ws.root / "agent.py").read_text()
    assert ("ALPHA-SKILL" in harness) != ("BETA-SKILL" in harness)  # the superseded change is not in
    assert History(ws.root).head() == kept[0].commit
    assert_tidy(ws)


def test_kill_9_with_three_candidates_pending_then_resume(tmp_path, scripts):
    write_script(scripts, "slow", [{"match": ".", "turns": [tool("bash", command="sleep 3"), {"content": "no"}]}])
    write_script(scripts, "meta", [
        edit(n, "MAX_TURNS = 30", f"MAX_TURNS = 3{n}", f"Turn budget, take {n}", []) for n in (1, 2, 3)
    ] + [{"match": "^# Experiment 4:", "turns": [  # still proposing (a spot check) when the kill comes
        tool("edit_file", path="agent.py", old_text="MAX_TURNS = 30", new_text="MAX_TURNS = 34"),
        tool("spot_check", tasks=["hello-file"]), submit("Turn budget, take 4", [])]}])  # fmt: skip
    ws = workspace.init(tmp_path / "ws", model="scripted/slow")
    command = [str(Path(sys.executable).parent / "autoagent"), "run", "--candidates", "4", "--meta-model",
               "scripted/meta"]  # fmt: skip
    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen([*command, "--iterations", "4"], cwd=ws.root, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    evaluating = [f"exp{n}-eval-*/*/trial.log" for n in (1, 2, 3)] + ["exp4-spot1-*/*/trial.log"]
    while not all(list(ws.jobs_dir.glob(pattern)) for pattern in evaluating):
        assert time.monotonic() < deadline and first.poll() is None, (tmp_path / "first.log").read_text()
        time.sleep(0.2)
    first.send_signal(signal.SIGKILL)
    first.wait()
    time.sleep(1)
    pending = Ledger(ws.root).experiments()
    assert [(e.id, e.status) for e in pending] == [(0, "baseline"), (1, "running"), (2, "running"), (3, "running")]
    assert len(list((ws.root / ".autoagent" / "worktrees").iterdir())) == 4  # left by the kill

    second = subprocess.run([*command, "--iterations", "3"], cwd=ws.root, capture_output=True, text=True,
                            timeout=900)  # fmt: skip
    assert second.returncode == 0, second.stdout + second.stderr
    for n in (1, 2, 3):
        assert f"experiment {n}: the run stopped during it; evaluating it again" in second.stdout
    experiments = Ledger(ws.root).experiments()
    assert [e.id for e in experiments] == [0, 1, 2, 3]  # the three redone, none new (3 iterations)
    assert all(e.passed is not None for e in experiments)
    assert len((ws.root / "results.tsv").read_text().splitlines()) == 1 + 4  # no row lost, none twice
    patches = list((ws.root / ".autoagent" / "set-aside").glob("*.patch"))  # experiment 4's edit, kept
    assert len(patches) == 1 and "+MAX_TURNS = 34" in patches[0].read_text()
    assert "experiment 4's unfinished proposal set aside in" in second.stdout
    assert_tidy(ws, set_aside=1)


def test_compose_merges_changes_to_different_lines_and_names_a_conflict(tmp_path):
    ws = workspace.init(tmp_path / "ws", model="scripted/examples")
    history = History(ws.root)
    base = history.head()

    def commit(old: str, new: str) -> str:
        ws.harness.write_text(history.show(base, "agent.py").replace(old, new))
        commit = history.commit_candidate(99, "a change")
        history.restore(base)
        return commit

    alpha = commit(FIRST_LINE, FIRST_LINE + " ALPHA.")
    beta = commit(LAST_LINE, "BETA. " + LAST_LINE)
    clash = commit(FIRST_LINE, FIRST_LINE + " CLASH.")
    merged = compose(history, alpha, beta, 7, "both")
    text = history.show(merged.commit, "agent.py")
    assert "ALPHA." in text and "BETA." in text and history.candidate(7) == merged.commit
    conflict = compose(history, alpha, clash, 8, "clash")
    assert conflict.commit is None and conflict.conflicts == ["agent.py"] and history.candidate(8) is None
    assert compose(history, alpha, alpha, 9, "the same").why_not == "the best already has its change"
