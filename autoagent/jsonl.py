"""Append-only JSON-lines files that survive being killed mid-write."""

from __future__ import annotations

import fcntl
import json
import os
from pathlib import Path
from typing import Any


def append(path: Path, record: dict[str, Any], *, sync: bool = False) -> None:
    """Append one record as a line. Concurrent writers take turns (flock), and a line
    left unfinished by a killed writer is closed first, so it cannot swallow this one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "ab+") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        file.seek(0, os.SEEK_END)
        if file.tell() > 0:
            file.seek(-1, os.SEEK_END)
            if file.read(1) != b"\n":
                file.write(b"\n")
        file.write(json.dumps(record).encode() + b"\n")
        file.flush()
        if sync:
            os.fsync(file.fileno())


def read(path: Path) -> list[dict[str, Any]]:
    """Every complete record; a line cut short by a kill is skipped."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
