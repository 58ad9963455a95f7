"""The ledger: `.autoagent/runs.jsonl`, the source of truth, and `results.tsv`, its summary.

Every change to an experiment appends its whole record to runs.jsonl (the last
record of an id wins), flushed to disk before anything else happens, so a run
killed at any moment resumes from what is there. results.tsv is rewritten from it
each time, with the reference columns, and is never the source of anything.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from autoagent import jsonl
from autoagent.spend import money

# The reference columns, then how well the proposal predicted its own effect, and what a
# search task cost on average in the measure the gate compared (e.g. "1234 tokens").
TASK_PASS = 0.5  # a task is passed when its score, the mean reward of its attempts, reaches this
COLUMNS = ("commit", "avg_score", "passed", "task_scores", "cost_usd", "status", "description", "hit_rate",
           "cost_per_task")  # fmt: skip
# superseded: it won against a parent that was no longer the best; its change was composed onto
# the best as an experiment of its own (composed_from names it), or conflicted (the reason says).
FINAL = {"baseline", "keep", "discard", "indecisive", "superseded", "crash", "rejected", "interrupted"}


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass
class Experiment:
    id: int  # 0 is the baseline
    status: str  # running, then: baseline keep discard indecisive superseded crash rejected interrupted
    commit: str | None = None  # the candidate's commit (refs/autoagent/candidates/<id>)
    parent: str | None = None  # the commit it was proposed from and evaluated against
    parent_id: int | None = None  # on a composition: the best it was composed onto
    composed_from: int | None = None  # on a composition: the superseded candidate whose change it merges
    description: str = ""
    hypothesis: str = ""
    expected_flips: list[str] = field(default_factory=list)
    overfitting: str = ""  # the meta-agent's answer to the overfitting question
    flips: dict[str, list[str]] = field(default_factory=dict)  # fixed / broken vs parent
    reason: str = ""  # why it was kept, discarded or crashed
    public_reason: str | None = None  # the reason as the meta-agent may see it (no held-out detail)
    hit_rate: float | None = None  # share of the expected flips that came
    avg_score: float | None = None
    passed: int | None = None
    total: int | None = None
    task_scores: dict[str, float] = field(default_factory=dict)
    trials: list[dict[str, Any]] = field(default_factory=list)  # task, trial_dir, reward, error
    held_out: dict[str, int] = field(default_factory=dict)  # passed, total on the held-out tasks
    noise_floor: float | None = None  # the baseline's: chance drift of `passed`, in tasks
    runs: int | None = None  # trials run to decide
    saved: int | None = None  # trials a full evaluation would have added
    cost_usd: dict[str, float] = field(default_factory=dict)  # by role: task, meta
    kept_as: str = ""  # what a keep rests on: the score (""), "cheaper" or "simpler"
    effort: dict[str, Any] = field(default_factory=dict)  # per search task on average (effort.summary)
    cost_unknown: list[str] = field(default_factory=list)  # roles with calls of unknown cost besides
    timings: dict[str, float] = field(default_factory=dict)  # seconds by phase
    job_dirs: list[str] = field(default_factory=list)
    retried: list[str] = field(default_factory=list)  # trial dirs of infrastructure failures, run again
    meta_log: str | None = None
    started_at: str = field(default_factory=now)
    finished_at: str | None = None

    @property
    def final(self) -> bool:
        return self.status in FINAL

    @property
    def verdict(self) -> str:
        """The status as people read it: keep (cheaper), keep (simpler), discard, ..."""
        return f"{self.status} ({self.kept_as})" if self.kept_as and self.status == "keep" else self.status

    @property
    def total_cost(self) -> float:
        return sum(self.cost_usd.values())


@dataclass
class Ledger:
    root: Path  # the workspace

    @property
    def runs(self) -> Path:
        return self.root / ".autoagent" / "runs.jsonl"

    @property
    def tsv(self) -> Path:
        return self.root / "results.tsv"

    def records(self) -> list[dict[str, Any]]:
        return jsonl.read(self.runs)

    def experiments(self) -> list[Experiment]:
        latest: dict[int, dict[str, Any]] = {}
        for record in self.records():
            if record.get("kind", "experiment") == "experiment":
                latest[record["id"]] = record
        fields = Experiment.__dataclass_fields__
        return [
            Experiment(**{k: v for k, v in record.items() if k in fields})
            for _, record in sorted(latest.items())
        ]

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.records() if r.get("kind") == kind]

    def save(self, experiment: Experiment) -> None:
        self._append({"kind": "experiment", **asdict(experiment)})
        self.write_tsv()

    def note(self, kind: str, **details: Any) -> None:
        """A run event that is not an experiment: a meta-agent failure, a stop."""
        self._append({"kind": kind, "time": now(), **details})

    def _append(self, record: dict[str, Any]) -> None:
        jsonl.append(self.runs, record, sync=True)

    def best(self) -> Experiment | None:
        """The last kept experiment, or the baseline."""
        kept = [e for e in self.experiments() if e.status in ("baseline", "keep")]
        return kept[-1] if kept else None

    def next_id(self) -> int:
        experiments = self.experiments()
        return experiments[-1].id + 1 if experiments else 0

    def write_tsv(self) -> None:
        rows = ["\t".join(COLUMNS)]
        for e in self.experiments():
            if not e.final:
                continue
            scores = ",".join(f"{task}={score:g}" for task, score in sorted(e.task_scores.items()))
            rows.append("\t".join([
                (e.commit or "")[:7],
                "" if e.avg_score is None else f"{e.avg_score:.4f}",
                "" if e.passed is None else f"{e.passed}/{e.total}",
                scores,
                money(e.total_cost, bool(e.cost_unknown)).removeprefix("$"),  # "0.4200 + unknown"
                e.status,
                " ".join((e.description or e.reason).split()),  # one line, no tabs
                "" if e.hit_rate is None else f"{e.hit_rate:.2f}",
                _cost_per_task(e.effort),
            ]))  # fmt: skip
        temporary = self.tsv.with_suffix(".tmp")
        temporary.write_text("\n".join(rows) + "\n")
        temporary.replace(self.tsv)


def _cost_per_task(effort: dict[str, Any]) -> str:
    """The gate's cost measure per search task, with its unit; empty when unknown."""
    measure = effort.get("measure")
    value = effort.get(measure) if measure else None
    return "" if value is None else f"{value:.6g} {measure}"
