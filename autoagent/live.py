"""Where a run stands right now: `.autoagent/live.json`, rewritten as it goes.

The running loop writes it; `autoagent status` (in another process) and the live
display read it. It is a view, never a record: the ledger is the record.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass
class LiveStatus:
    pid: int = field(default_factory=os.getpid)
    started_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)
    experiment: int | None = None
    phase: str = "starting"  # proposing, validating, evaluating, waiting, stopped
    trials_done: int = 0
    trials_total: int = 0
    best: dict = field(default_factory=dict)  # id, passed, total
    spend: dict = field(default_factory=dict)  # role -> USD, this invocation
    spend_unknown: list = field(default_factory=list)  # roles with calls of unknown cost besides
    budget: dict = field(default_factory=dict)  # iterations, hours, usd
    last: str = ""  # the last line reported
    in_flight: list = field(default_factory=list)  # with several candidates at once: what each is doing

    @staticmethod
    def path(root: Path) -> Path:
        return root / ".autoagent" / "live.json"

    def save(self, root: Path) -> None:
        self.updated_at = time.time()
        target = self.path(root)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_suffix(".tmp")
        temporary.write_text(json.dumps(asdict(self)))
        temporary.replace(target)

    @classmethod
    def load(cls, root: Path) -> LiveStatus | None:
        try:
            data = json.loads(cls.path(root).read_text())
        except (OSError, json.JSONDecodeError):
            return None
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @property
    def running(self) -> bool:
        """Is the process that writes this still alive (and not done)?"""
        if self.phase == "stopped":
            return False
        try:
            os.kill(self.pid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    @property
    def elapsed(self) -> float:
        return self.updated_at - self.started_at
