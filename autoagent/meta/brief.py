"""The meta-agent's brief: what it needs to start, with everything else one tool call away.

program.md, the harness, the ledger, the best harness's per-task results, what
happened to the last candidate, and a few lines per failing task. Full traces stay
on disk, reachable with read_trajectory, read_verifier_output and search_traces.

It speaks per task, as the ledger counts: a task may have run several times (the
baseline runs each twice by default); it appears once, with its attempts, and it
is passed when its score in the ledger (the mean reward of its attempts) is at
least TASK_PASS (ledger.py).
"""

from __future__ import annotations

from pathlib import Path

from autoagent import traces
from autoagent.evaluate import effort
from autoagent.evaluate.results import Trial
from autoagent.ledger import TASK_PASS, Experiment
from autoagent.strategies.stats import mean

LEDGER_ROWS = 30  # the most recent rows in the brief; read_ledger has all of them
DIGESTS = 30  # failing tasks digested in the brief; the rest are named


SYSTEM_PROMPT = """\
You are the meta-agent of AutoAgent. Your job is to improve a task agent, the harness in
agent.py, so that it solves more tasks of the kind its workspace holds. You do not solve
tasks yourself: you read how the agent failed and change the harness.

Each time you are called, make ONE coherent change and submit it. Code, not you, then
evaluates the candidate on the tasks and keeps it only if it does better, or as well for
less (fewer tokens, turns, dollars or seconds per task), or as well with a simpler harness;
otherwise it is reverted. Work like this:
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
    objective: str = "score",
    focus: list[str] | None = None,
    others: list[str] | None = None,
    parent: Experiment | None = None,
) -> str:
    """The first user message of a proposal; `visible` are the tasks it may mention.

    When several proposals run at once, `focus` are the failing tasks this one should work
    on (see `spread`), and `others` say in a line each what the other proposals in flight
    are trying, so that they do not all chase the same failure. Each is a section of its own
    only when given: a lone proposal's brief is as it always was.

    `parent` is the harness this proposal builds on when it is not the best (parent selection
    "frontier", strategies/parents.py): `harness` is then its agent.py, and the results and
    failures shown are its own."""
    base = parent or best
    if base.id == best.id:
        which, now = "best", f"the best so far (experiment {best.id}, {_passed(best, visible)})"
    else:
        which, now = "parent", (f"your parent (experiment {base.id}, {_passed(base, visible)}). It is not the "
                                f"best so far (experiment {best.id}, {_passed(best, visible)}) but does best on "
                                "some task; your candidate is judged against it, and a winner is then merged "
                                "onto the best")  # fmt: skip
    parts = [
        f"# Experiment {experiment_id}: propose one change to agent.py",
        f"## The directive (program.md)\n\n{program.strip()}",
        f"## The harness now: agent.py, {now}\n\n```python\n{harness}```",
        "## The ledger\n\n" + _ledger(experiments),
        f"## Results of the {which} harness (experiment {base.id})\n\n" + _results(base, visible),
    ]
    saturated = _saturated(base, visible, objective)
    if saturated:
        parts.append(saturated)
    last = experiments[-1] if experiments else None
    if last is not None and last.id != base.id and last.final:
        parts.append(
            f"## The last candidate (experiment {last.id})\n\n{last.verdict}: "
            f"{last.description}\nwhy: {last.public_reason or last.reason}"
        )
    predictions = _predictions(experiments, visible)
    if predictions:
        parts.append("## Your predictions so far (expected flips against what happened)\n\n" + predictions)
    focus = [t for t in focus or [] if t in visible]  # never a task it may not see
    if focus:
        parts.append("## Your focus\n\nOther proposals are being made at the same time, and the failing "
                     f"tasks are shared out among them. Concentrate on: {', '.join(focus)}. Their failures "
                     "come first below. Aim at the weakness of the harness behind them, not at the tasks.")  # fmt: skip
    if others:
        parts.append("## Other proposals in flight\n\nThese are being tried now; propose something "
                     "different:\n" + "\n".join(f"- {line}" for line in others))  # fmt: skip
    attempts = _attempts(base, visible)
    failing = [task for task, trials in attempts.items() if any(t["reward"] < 1.0 for t in trials)]
    failing.sort(key=lambda task: task not in focus)  # the focus first; otherwise in the order they ran
    if failing:
        digests = [_digest(attempts[task]) for task in failing[:DIGESTS]]
        more = failing[DIGESTS:]
        if more:
            digests.append(f"(and {len(more)} more tasks with failed attempts: {', '.join(more)})")
        parts.append(
            f"## Failures of the {which} harness, in brief (experiment {base.id})\n\n"
            + "\n\n".join(digests)
            + f"\n\nFull traces: read_trajectory(experiment='{base.id}', task=...), "
            "read_verifier_output, search_traces."
        )
    return "\n\n".join(parts) + "\n"


def failing(experiment: Experiment, visible: list[str]) -> list[str]:
    """The visible tasks the experiment failed in some attempt, the most failed first (by the
    share of failed attempts; ties in the order they ran): what `spread` shares out."""
    attempts = _attempts(experiment, visible)
    share = {task: sum(t["reward"] < 1.0 for t in trials) / len(trials) for task, trials in attempts.items()}
    return sorted((task for task, failed in share.items() if failed > 0), key=lambda task: -share[task])


def spread(failing: list[str], k: int, index: int) -> list[str]:
    """The failing tasks proposer `index` of `k` concentrates on: round-robin, so the first
    (most failed) tasks go one to each proposer. With fewer tasks than proposers they are
    dealt round again: every proposer has a focus while anything fails."""
    if not 0 <= index < k:
        raise ValueError(f"proposer {index} of {k}: index must be in 0..{k - 1}")
    if not failing:
        return []
    return failing[index::k] or [failing[index % len(failing)]]


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


def _attempts(experiment: Experiment, visible: list[str]) -> dict[str, list[dict]]:
    """The attempts that count, by visible task in the order they ran (a smoke run does not count)."""
    attempts: dict[str, list[dict]] = {}
    for trial in experiment.trials:
        if trial["task"] in visible and trial.get("label") != "smoke":
            attempts.setdefault(trial["task"], []).append(trial)
    return attempts


def _score(experiment: Experiment, task: str, trials: list[dict]) -> float:
    """The task's score as the ledger has it, or the same mean from its attempts."""
    return experiment.task_scores.get(task, mean([t["reward"] for t in trials]))


def _passed(experiment: Experiment, visible: list[str]) -> str:
    attempts = _attempts(experiment, visible)
    passed = sum(_score(experiment, task, trials) >= TASK_PASS for task, trials in attempts.items())
    return f"passed {passed}/{len(attempts)} tasks"


def _digest(trials: list[dict]) -> str:
    """One failing task: its first failed attempt in a few lines, and how many attempts failed."""
    failed = [t for t in trials if t["reward"] < 1.0]
    text = traces.digest(Trial.from_record(failed[0]))
    if len(trials) == 1:
        return text
    heading, _, rest = text.partition("\n")
    note = f"{len(failed)}/{len(trials)} attempts failed; the first failed attempt:"
    return "\n".join(line for line in (heading, note, rest) if line)


def _ledger(experiments: list[Experiment]) -> str:
    rows = ["id  status          description"]
    shown = experiments[-LEDGER_ROWS:]
    if len(experiments) > len(shown):
        rows.append(f"({len(experiments) - len(shown)} earlier experiments: read_ledger)")
    for e in shown:
        text = e.description or e.public_reason or e.reason
        rows.append(f"{e.id:<3} {e.verdict:<15} {' '.join(text.split())[:160]}")
    return "\n".join(rows)


def _results(experiment: Experiment, visible: list[str]) -> str:
    """One line per task: passed or failed, its attempts, their rewards when partial, an error."""
    lines = []
    for task, trials in _attempts(experiment, visible).items():
        rewards = [t["reward"] for t in trials]
        verdict = "passed" if _score(experiment, task, trials) >= TASK_PASS else "failed"
        line = f"{task}: {verdict}, {sum(r >= 1.0 for r in rewards)}/{len(trials)} attempts"
        if any(0.0 < r < 1.0 for r in rewards):
            line += f" (rewards {', '.join(f'{r:g}' for r in rewards)})"
        error = next((t["error"] for t in trials if t.get("error")), None)
        if error:
            line += f" ({error[:120]})"
        if effort.known(trials):
            line += f" · {'mean ' if len(trials) > 1 else ''}{effort.mean_line(trials)}"
        lines.append(line)
    return "\n".join(lines) or "(no trials)"


def _saturated(best: Experiment, visible: list[str], objective: str) -> str | None:
    """When the best harness passes every task: say so, and what is left to gain."""
    attempts = _attempts(best, visible)
    if not attempts or any(_score(best, task, trials) < TASK_PASS for task, trials in attempts.items()):
        return None
    text = (f"## Every task passes\n\nThe best harness passes all {len(attempts)} tasks you work on: "
            "the score cannot rise here.")  # fmt: skip
    if objective != "score-then-cost":
        return text + " Make the harness simpler, or more reliable where attempts still fail."
    measure = best.effort.get("measure", "tokens")
    now = effort.fmt(measure, best.effort.get(measure))
    return text + (
        f" Your objective is now cost: the same results for less. The cost compared is {measure} "
        f"per task ({now} now, on average). A candidate that still passes every task and costs less "
        "by more than chance is kept as `keep (cheaper)`; one that loses a task is discarded, "
        "however cheap. Look at where the turns and tokens go in the traces: wasted exploration, "
        "long outputs read in full, retries, a prompt longer than it needs to be."
    )


def program_text(root: Path) -> str:
    path = root / "program.md"
    return path.read_text() if path.is_file() else "(no program.md: improve the harness in general)"
