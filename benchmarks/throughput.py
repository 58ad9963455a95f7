"""What K candidates in flight at once buy: decisions per hour and pool utilisation.

    uv run python benchmarks/throughput.py [--minutes 3.5] [--seed 0] [--slots 16]
        [--tasks 20] [--turn-sec 3] [--proposal-sec 20] [--k 1 2 4 8] [--keep]

For each K (`Settings.candidates`), `autoagent run` in a fresh workspace, with the same
simulated truth, the same seed and the same wall-time budget (`Budget(hours=...)`), a
trial pool of `--slots` slots ([run] concurrency). Everything is real (Harbor trials in
the sandbox, the harness in its box, git, the gate) except the two models, which are
scripted and take time instead of thinking:

- The tasks are tiny: the verifier checks that /app/out says "ok". The task model runs
  one command that writes it with a probability P (a draw from /dev/urandom), then
  stops; each of its turns takes --turn-sec, so a trial costs seconds of wall time (a
  real one costs minutes) and almost no CPU.
- P depends on the harness. The benchmark's starting agent.py adds up the hint files
  in `.agent/hints/` (lines `<code> <+-steps>`, each task has a code in its
  instruction) and appends `skill <code> <level>` lines to its system prompt; the
  script picks the conversation by regex on that line (`system`) and the task's code
  (`match`). Level L means P = L/20. `.agent/hints/base` holds the starting levels:
  true success rates as benchmarks/gate_simulation.py draws them (a third near 0, a
  third near 1, a third in between).
- The scripted meta-agent has one conversation per experiment id (matched on the
  brief's first line): its turns take --proposal-sec in all; it writes one new hint
  file and submits, with expected_flips naming the tasks it changed. Its true gain is
  drawn (seeded) from gate_simulation's MIX: most proposals do nothing or harm. One
  file per proposal, so that two proposals' changes compose with a clean git merge.

Measured per K, after the baseline (from the run's own records, not the loop's internals):

- decisions per hour: experiments after the baseline that reached a verdict (the
  ledger, .autoagent/runs.jsonl), per hour of wall time from the baseline's end;
- pool utilisation: busy slot-seconds (every trial from its environment's start, when it
  got its slot, to its finished_at, from its Harbor result.json; Harbor's own started_at
  comes before the wait for a slot) / (slots x those wall seconds); a decision is an
  experiment with a verdict, a composition and the candidate it supersedes counting one each;
- false keeps: keeps whose true gain is <= 0 (the true score of the kept commit's hint
  files minus its parent's), and the true score reached (the final best's);
- a trial's wall time (with its wait for a slot) and, of that, its agent's (the rest is
  the sandbox, Harbor and the verifier); CPU: cores busy on the whole machine and in this process tree (the loop,
  its workers, their sandboxes and harness boxes), and our CPU seconds per trial, to
  show whether the machine, not the pool, was the limit.

The defaults (a trial about 9 s, 6 of them the model's two turns; a proposal 20 s) take
about 18 minutes in all (4 x 3.5 minutes, plus each run's last decision). A full pool of 16 then runs under 2 trials a second, at about
0.25 s of CPU each: half a core of 2, so the pool, not the CPU, is what K fills. A few
minutes per K give a handful of decisions at K = 1: a rough ratio; `--minutes 10` or
more for a figure to publish.

The last line reads `K=4 vs K=1: <ratio>x decisions per hour, <percent>% pool
utilisation at K=4`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from gate_simulation import MIX, candidate, true_rates  # benchmarks/ is the script's directory
from loop_overhead import trivial_tasks

from autoagent import workspace
from autoagent.history import History
from autoagent.ledger import Ledger
from autoagent.loop import Loop, Settings
from autoagent.strategies.budget import Budget

LEVELS = 20  # P = level / LEVELS
HINTS = ".agent/hints"
DECIDED = {"keep", "discard", "indecisive", "crash", "rejected", "superseded"}  # a composition is its own


# -- the simulated truth ---------------------------------------------------------------


def code(index: int) -> str:
    """A task's code: what its instruction and the hints call it (a harness must not name tasks)."""
    return f"pz{index:02d}"


@dataclass
class Truth:
    """Starting levels per task code, and each experiment id's hint file (code -> steps)."""

    base: dict[str, int]
    proposals: dict[int, dict[str, int]]
    claims: dict[int, list[str]]  # the task names it expects to flip
    gains: dict[int, int]  # the drawn true gain, points (before rounding to levels)

    @classmethod
    def draw(cls, tasks: int, seed: int, proposals: int = 1000) -> Truth:
        rates = true_rates(tasks, random.Random(seed))  # task-00 ... : the names the tasks get
        codes = {task: code(i) for i, task in enumerate(rates)}
        base = {codes[t]: round(p * LEVELS) for t, p in rates.items()}
        hints, claims, gains = {}, {}, {}
        for n in range(1, proposals + 1):
            gain = random.Random(seed * 100_000 + n).choice(MIX)
            new, claimed = candidate(rates, gain, random.Random(seed * 100_000 + n + 50_000))
            steps = {codes[t]: round(new[t] * LEVELS) - base[codes[t]] for t in rates}
            hints[n] = {c: s for c, s in steps.items() if s} or {codes[claimed[0]]: 0}  # a change that does nothing
            claims[n], gains[n] = claimed, gain
        return cls(base, hints, claims, gains)

    def score(self, files: dict[str, str]) -> float:
        """The true score (mean P over the tasks) of a harness with these hint files."""
        levels = dict(self.base)
        for name, text in files.items():
            if name != "base":
                for c, steps in hint_lines(text).items():
                    levels[c] = levels.get(c, 0) + steps
        return sum(min(LEVELS, max(0, level)) for level in levels.values()) / LEVELS / len(levels)


def hint_lines(text: str) -> dict[str, int]:
    lines = (line.split() for line in text.splitlines() if line.strip())
    return {c: int(steps) for c, steps in lines}


def hint_text(steps: dict[str, int]) -> str:
    return "".join(f"{c} {s:+d}\n" for c, s in sorted(steps.items()))


# What the starting agent.py adds above the template's FIXED ADAPTER BOUNDARY: the hints,
# added up, at the end of its system prompt.
SKILLS = '''

HINTS = Path(__file__).parent / ".agent" / "hints"


def skills() -> str:
    """The hint files added up: one `skill <code> <level>` line per code (level 0..20)."""
    levels: dict[str, int] = {}
    for file in sorted(HINTS.glob("*")):
        for line in file.read_text().splitlines():
            if line.strip():
                name, steps = line.split()
                levels[name] = levels.get(name, 0) + int(steps)
    return "\\n".join(f"skill {name} {min(20, max(0, level))}" for name, level in sorted(levels.items()))
'''


def harness(template: str) -> str:
    """The template with `skills()` appended to its system prompt (above the boundary)."""
    edits = {
        "from collections.abc import Awaitable, Callable\n": "from collections.abc import Awaitable, Callable\n"
                                                             "from pathlib import Path\n",
        "# -- tools ---": SKILLS.lstrip("\n") + "\n\n# -- tools ---",
        '{"role": "system", "content": SYSTEM_PROMPT}': '{"role": "system", "content": system}',
        "    trace.system(SYSTEM_PROMPT)": "    trace.system(system)",
        '    messages = [\n': '    system = SYSTEM_PROMPT + "\\n\\n" + skills()\n    messages = [\n',
    }
    for old, new in edits.items():
        assert template.count(old) == 1, old
        template = template.replace(old, new)
    return template


def task_script(truth: Truth, turn_sec: float) -> dict:
    """One conversation per task code and level: succeed with P = level / 20, then stop."""
    conversations = []
    for c in truth.base:
        for level in range(LEVELS + 1):
            threshold = round(level / LEVELS * 65536)
            command = f"[ $(od -An -N2 -tu2 /dev/urandom) -lt {threshold} ] && echo ok > /app/out; true"
            conversations.append({"match": rf"\b{c}\b", "system": rf"\bskill {c} {level}\b", "turns": [
                {"content": "", "tool_calls": [{"name": "bash", "arguments": {"command": command}}]},
                {"content": "Done."}]})  # fmt: skip
    return {"description": "throughput benchmark: a task succeeds with the P its skill level gives",
            "delay_sec": turn_sec, "conversations": conversations}  # fmt: skip


def meta_script(truth: Truth, proposal_sec: float) -> dict:
    """One conversation per experiment id: write its hint file, submit; --proposal-sec in all."""
    conversations = []
    for n, steps in truth.proposals.items():
        write = {"name": "write_file", "arguments": {"path": f"{HINTS}/exp-{n:04d}", "content": hint_text(steps)}}
        submit = {"name": "submit", "arguments": {
            "description": f"hint {n}", "hypothesis": f"hint {n} helps", "expected_flips": truth.claims[n],
            "overfitting": "yes"}}  # fmt: skip
        conversations.append({"match": rf"^# Experiment {n}:", "turns": [
            {"content": "", "tool_calls": [write]}, {"content": "", "tool_calls": [submit]}]})  # fmt: skip
    return {"description": "throughput benchmark: one hint file per experiment",
            "delay_sec": proposal_sec / 2, "conversations": conversations}  # fmt: skip


def make_tasks(root: Path, count: int) -> Path:
    """loop_overhead's trivial tasks, each with its code in its instruction and a verifier
    that passes only if /app/out says "ok"."""
    trivial_tasks(root, count)
    for index, task in enumerate(sorted(root.iterdir())):
        task = task.rename(root / f"task-{index:02d}")
        (task / "instruction.md").write_text(f"Puzzle {code(index)}: write ok to /app/out.\n")
        (task / "tests" / "test.sh").write_text(
            '#!/bin/bash\n[ "$(cat /app/out 2>/dev/null)" = ok ] && echo 1 > /logs/verifier/reward.txt '
            "|| echo 0 > /logs/verifier/reward.txt\n"
        )
    return root


# -- one run ----------------------------------------------------------------------------


def cpu_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat."""
    fields = [float(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    ticks = os.sysconf("SC_CLK_TCK")
    idle = fields[3] + fields[4]
    return (sum(fields) - idle) / ticks, sum(fields) / ticks


def own_cpu() -> float:
    mine, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return mine.ru_utime + mine.ru_stime + children.ru_utime + children.ru_stime


def hint_files(history: History, commit: str) -> dict[str, str]:
    names = history.git("ls-tree", "-r", "--name-only", commit, "--", HINTS).split()
    return {Path(name).name: history.git("show", f"{commit}:{name}", raw=True) for name in names}


@dataclass
class Busy:
    seconds: float = 0.0  # slot-seconds within the window
    trials: int = 0  # trials that overlap it
    trial_seconds: float = 0.0  # their whole wall time, summed
    agent_seconds: float = 0.0  # of that, the agent's run (the model's turns, the commands)


def busy(jobs: Path, start: float, end: float, skip: set[str]) -> Busy:
    """What the trials of `jobs` (but those of the job dirs in `skip`) occupied of the pool
    between `start` and `end` (epoch seconds), from their own result.json."""
    found = Busy()
    for result in jobs.glob("*/*/result.json"):
        if str(result.parent.parent) in skip:
            continue
        data = json.loads(result.read_text())
        began, ended = _span(data)
        setup = _span(data.get("environment_setup") or {})[0]
        began = setup or began  # a trial holds its slot from its environment's start: not while it waits
        overlap = min(ended, end) - max(began, start) if began else 0.0
        if overlap > 0:
            agent = _span(data.get("agent_execution") or {})
            found.seconds += overlap
            found.trials += 1
            found.trial_seconds += ended - began
            found.agent_seconds += agent[1] - agent[0]
    return found


def _span(data: dict) -> tuple[float, float]:
    if not data.get("started_at") or not data.get("finished_at"):
        return 0.0, 0.0
    return tuple(datetime.fromisoformat(data[key]).timestamp() for key in ("started_at", "finished_at"))


def run_one(k: int, truth: Truth, scratch: Path, args: argparse.Namespace) -> dict:
    ws = workspace.init(scratch / f"ws-k{k}", str(make_tasks(scratch / f"tasks-k{k}", args.tasks)),
                        model="scripted/throughput-task")  # fmt: skip
    ws.harness.write_text(harness(ws.harness.read_text()))
    (ws.root / HINTS).mkdir(parents=True)
    (ws.root / HINTS / "base").write_text("".join(f"{c} {level}\n" for c, level in truth.base.items()))
    settings = Settings.from_workspace(ws, meta_model="scripted/throughput-meta", concurrency=args.slots,
                                       candidates=k, budget=Budget(hours=args.minutes / 60))  # fmt: skip
    began = time.monotonic()

    def report(line: str) -> None:
        print(f"  [K={k} {time.monotonic() - began:6.1f} s] {line}", file=sys.stderr, flush=True)

    loop = Loop(ws, settings, report=report)
    cpu_before, own_before = cpu_busy(), own_cpu()
    asyncio.run(loop.run())
    ended = time.time()
    cpu_after, own_after = cpu_busy(), own_cpu()
    experiments = Ledger(ws.root).experiments()
    baseline = next(e for e in experiments if e.id == 0)
    start = datetime.fromisoformat(baseline.finished_at).timestamp()
    wall = ended - start
    decided = [e for e in experiments if e.id > 0 and e.status in DECIDED]
    history = History(ws.root)
    truth_of = {}

    def true_score(commit: str) -> float:
        if commit not in truth_of:
            truth_of[commit] = truth.score(hint_files(history, commit))
        return truth_of[commit]

    keeps = [e for e in decided if e.status == "keep"]
    false_keeps = [e for e in keeps if true_score(e.commit) - true_score(e.parent) <= 0]
    pool = busy(ws.jobs_dir, start, ended, set(baseline.job_dirs))
    best = Ledger(ws.root).best()
    machine = (cpu_after[0] - cpu_before[0]) / ((cpu_after[1] - cpu_before[1]) / os.cpu_count())
    return {
        "k": k, "wall": wall, "decisions": len(decided), "per_hour": len(decided) / wall * 3600,
        "utilisation": pool.seconds / (args.slots * wall), "trials": pool.trials, "keeps": len(keeps),
        "trial_sec": pool.trial_seconds / max(1, pool.trials), "agent_sec": pool.agent_seconds / max(1, pool.trials),
        "false_keeps": len(false_keeps), "start": true_score(baseline.commit), "end": true_score(best.commit),
        "cpu": machine, "own_cpu": (own_after - own_before) / (time.monotonic() - began),
        "cpu_per_trial": (own_after - own_before) / max(1, pool.trials + len(baseline.trials)),
        "statuses": sorted(e.status for e in decided),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=3.5, help="wall-time budget per K, baseline included")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--slots", type=int, default=16, help="the trial pool ([run] concurrency)")
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--turn-sec", type=float, default=3.0, help="per task-model turn (2 turns a trial)")
    parser.add_argument("--proposal-sec", type=float, default=20.0, help="per proposal (2 meta-agent turns)")
    parser.add_argument("--k", type=int, nargs="+", default=[1, 2, 4, 8], help="candidates in flight")
    parser.add_argument("--keep", action="store_true", help="keep the workspaces (their ledgers, trials)")
    args = parser.parse_args()
    os.environ.setdefault("HARBOR_TELEMETRY", "0")
    truth = Truth.draw(args.tasks, args.seed)
    results = []
    with tempfile.TemporaryDirectory(prefix="autoagent-throughput-", delete=not args.keep) as temporary:
        scratch = Path(temporary)
        if args.keep:
            print(f"workspaces in {scratch}", file=sys.stderr, flush=True)
        scripts = scratch / "scripts"
        scripts.mkdir()
        (scripts / "throughput-task.json").write_text(json.dumps(task_script(truth, args.turn_sec)))
        (scripts / "throughput-meta.json").write_text(json.dumps(meta_script(truth, args.proposal_sec)))
        os.environ["AUTOAGENT_SCRIPTS"] = str(scripts)
        for k in args.k:
            print(f"K={k}: {args.minutes:g} minutes of `autoagent run`...", file=sys.stderr, flush=True)
            results.append(run_one(k, truth, scratch, args))
    print(f"\n# Throughput ({os.cpu_count()} cores; {args.tasks} tasks; pool of {args.slots}; "
          f"{args.minutes:g} min per K; a turn {args.turn_sec:g} s, a proposal {args.proposal_sec:g} s; "
          f"seed {args.seed})\n")  # fmt: skip
    print("| K | decisions | per hour | pool utilisation | trials | trial s (agent s) | keeps | false keeps | "
          "true score | CPU cores busy: machine / ours | our CPU s per trial |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|")  # fmt: skip
    for r in results:
        print(f"| {r['k']} | {r['decisions']} in {r['wall'] / 60:.1f} min | {r['per_hour']:.0f} | "
              f"{100 * r['utilisation']:.0f}% | {r['trials']} | {r['trial_sec']:.1f} ({r['agent_sec']:.1f}) | "
              f"{r['keeps']} | {r['false_keeps']} | {100 * r['start']:.1f} -> {100 * r['end']:.1f} | "
              f"{r['cpu']:.2f} / {r['own_cpu']:.2f} | {r['cpu_per_trial']:.2f} |")  # fmt: skip
    by_k = {r["k"]: r for r in results}
    other = 4 if 4 in by_k else max(by_k)  # the line compares K=4; with other --k, the largest
    if 1 in by_k and other != 1:
        ratio = by_k[other]["per_hour"] / by_k[1]["per_hour"] if by_k[1]["per_hour"] else float("inf")
        print(f"K={other} vs K=1: {ratio:.2f}x decisions per hour, "
              f"{100 * by_k[other]['utilisation']:.0f}% pool utilisation at K={other}")  # fmt: skip


if __name__ == "__main__":
    main()
