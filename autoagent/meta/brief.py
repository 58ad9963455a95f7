"""The meta-agent's brief: what it needs to start, with everything else one tool call away.

program.md, the harness, the ledger, the best harness's per-task results, what
happened to the last candidate, and a few lines per failed trial. Full traces stay
on disk, reachable with read_trajectory, read_verifier_output and search_traces.
"""

from __future__ import annotations

from pathlib import Path

from autoagent import traces
from autoagent.evaluate.results import Trial
from autoagent.ledger import Experiment

LEDGER_ROWS = 30  # the most recent rows in the brief; read_ledger has all of them
DIGESTS = 30  # failed trials digested in the brief; the rest are named


SYSTEM_PROMPT = """\
You are the meta-agent of AutoAgent. Your job is to improve a task agent, the harness in
agent.py, so that it solves more tasks of the kind its workspace holds. You do not solve
tasks yourself: you read how the agent failed and change the harness.

Each time you are called, make ONE coherent change and submit it. Code, not you, then
evaluates the candidate on the tasks and keeps it only if it does better (or as well with
a simpler harness); otherwise it is reverted. Work like this:
1. Read the failures in the brief, then dig into the traces that matter with
   read_trajectory, read_verifier_output and search_traces. Traces say why; scores only say that.
2. Form a hypothesis about a general weakness of the harness and change agent.py (above the
   FIXED ADAPTER BOUNDARY line) or files under .agent/ with edit_file or write_file.
3. Optionally try it on a few tasks with spot_check.
4. Call submit with a description, your hypothesis, the tasks you expect to flip from fail
   to pass, and your honest answer to: if this exact task disappeared, would this still be
   a worthwhile harness improvement?

Rules: never change the FIXED ADAPTER BOUNDARY line or anything below it; never name a
task, or the verifier's files (/tests, /solution, /logs/verifier), in the harness; prefer
simple, general changes. The directive from the workspace's owner follows."""


def render(
    *,
    experiment_id: int,
    program: str,
    harness: str,
    experiments: list[Experiment],
    best: Experiment,
    visible: list[str],
) -> str:
    """The first user message of a proposal; `visible` are the tasks it may mention."""
    parts = [
        f"# Experiment {experiment_id}: propose one change to agent.py",
        f"## The directive (program.md)\n\n{program.strip()}",
        f"## The harness now: agent.py, the best so far (experiment {best.id}, "
        f"{_passed(best, visible)})\n\n```python\n{harness}```",
        "## The ledger\n\n" + _ledger(experiments),
        f"## Results of the best harness (experiment {best.id})\n\n" + _results(best, visible),
    ]
    last = experiments[-1] if experiments else None
    if last is not None and last.id != best.id and last.final:
        parts.append(
            f"## The last candidate (experiment {last.id})\n\n{last.status}: "
            f"{last.description}\nwhy: {last.public_reason or last.reason}"
        )
    predictions = _predictions(experiments, visible)
    if predictions:
        parts.append("## Your predictions so far (expected flips against what happened)\n\n" + predictions)
    failed = [Trial.from_record(t) for t in best.trials if t["task"] in visible and t["reward"] < 1.0]
    if failed:
        digests = [traces.digest(trial) for trial in failed[:DIGESTS]]
        more = failed[DIGESTS:]
        if more:
            digests.append(f"(and {len(more)} more failed trials: {', '.join(t.task for t in more)})")
        parts.append(
            f"## Failures of the best harness, in brief (experiment {best.id})\n\n"
            + "\n\n".join(digests)
            + f"\n\nFull traces: read_trajectory(experiment='{best.id}', task=...), "
            "read_verifier_output, search_traces."
        )
    return "\n\n".join(parts) + "\n"


def _predictions(experiments: list[Experiment], visible: list[str]) -> str:
    """The learning log: what each proposal expected to fix, and what it did fix."""
    rows = []
    for e in experiments[-LEDGER_ROWS:]:
        if not e.expected_flips or e.hit_rate is None:
            continue
        fixed = [t for t in e.flips.get("fixed", []) if t in visible]
        broken = [t for t in e.flips.get("broken", []) if t in visible]
        rows.append(
            f"experiment {e.id} ({e.status}): expected {', '.join(e.expected_flips)}; fixed "
            f"{', '.join(fixed) or 'none'}; broke {', '.join(broken) or 'none'}; hit rate {e.hit_rate:.0%}"
        )
    return "\n".join(rows)


def _passed(experiment: Experiment, visible: list[str]) -> str:
    trials = [t for t in experiment.trials if t["task"] in visible]
    return f"passed {sum(t['reward'] >= 1.0 for t in trials)}/{len(trials)}"


def _ledger(experiments: list[Experiment]) -> str:
    rows = ["id  status       description"]
    shown = experiments[-LEDGER_ROWS:]
    if len(experiments) > len(shown):
        rows.append(f"({len(experiments) - len(shown)} earlier experiments: read_ledger)")
    for e in shown:
        text = e.description or e.public_reason or e.reason
        rows.append(f"{e.id:<3} {e.status:<12} {' '.join(text.split())[:160]}")
    return "\n".join(rows)


def _results(experiment: Experiment, visible: list[str]) -> str:
    lines = []
    for trial in experiment.trials:
        if trial["task"] in visible:
            error = f" ({trial['error'][:120]})" if trial.get("error") else ""
            lines.append(f"{trial['task']}: {trial['reward']:g}{error}")
    return "\n".join(lines) or "(no trials)"


def program_text(root: Path) -> str:
    path = root / "program.md"
    return path.read_text() if path.is_file() else "(no program.md: improve the harness in general)"
