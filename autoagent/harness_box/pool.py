"""Spare harness boxes: starting one (an interpreter, Harbor's modules) takes about
0.4 s, so each time a trial takes a box, the next one starts in the background.

A spare serves only a trial of the same harness, model and allowed environment (a
new experiment's spend goes to its own record), from the same harness files.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import shutil
from pathlib import Path

from autoagent.harness_box import box
from autoagent.harness_box.host import Box, new_root

_spares: dict[tuple, tuple[asyncio.Task, Path]] = {}
atexit.register(lambda: close_all())  # a worker leaves by os._exit, and calls close_all() itself


def _key(harness: str, harness_dir: Path, model: str | None) -> tuple:
    stamps = tuple((str(p), p.stat().st_mtime_ns) for p in box.harness_files(harness_dir, harness))
    return harness, str(harness_dir), model, tuple(sorted(box.allowed_env(model).items())), stamps


async def take(harness: str, harness_dir: Path, model: str | None) -> Box:
    """A started box for this harness (a spare if one is ready); a spare starts for the next."""
    key = _key(harness, harness_dir, model)
    spare, _ = _spares.pop(key, (None, None))
    close_all()  # spares for another harness or setting will not be used
    root = new_root()
    _spares[key] = (asyncio.create_task(Box.start(harness=harness, harness_dir=harness_dir, model=model,
                                                  root=root)), root)  # fmt: skip
    if spare is not None and spare.get_loop() is asyncio.get_running_loop():
        with contextlib.suppress(Exception):
            started = await spare
            if started.alive:
                return started
            started.abandon()
    elif spare is not None:
        _end(spare)
    return await Box.start(harness=harness, harness_dir=harness_dir, model=model)


def close_all() -> None:
    """End every spare box (the worker is done): one still starting finds its
    directory gone and fails, or dies with the worker."""
    for task, root in _spares.values():
        _end(task)
        shutil.rmtree(root, ignore_errors=True)
    _spares.clear()


def _end(task: asyncio.Task) -> None:
    if not task.done():
        task.add_done_callback(_end)
    elif not task.cancelled() and task.exception() is None:
        task.result().abandon()
