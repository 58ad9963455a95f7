"""The namespace holder itself: what happens when its owner dies without stopping it."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.usefixtures("needs_sandbox")

OWNER = textwrap.dedent("""
    import asyncio, sys, time
    from pathlib import Path
    from autoagent.sandbox import image
    from autoagent.sandbox.jail import Jail

    async def main():
        root = Path(sys.argv[1])
        jail = Jail("owner-test", root / "trial", image.overlays(root, None, root / "upper"))
        await jail.start()
        await jail.run("setsid sleep 1000 >/dev/null 2>&1 < /dev/null &")
        print(jail._init_pid, flush=True)
        time.sleep(1000)

    asyncio.run(main())
""")


def _alive_in_namespace(namespace: str) -> list[int]:
    alive = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.readlink(f"/proc/{entry}/ns/pid") != namespace:
                continue
            state = open(f"/proc/{entry}/status").read().split("State:")[1].split()[0]
        except OSError:
            continue
        if state != "Z":  # a zombie is dead; reaping it is the host init's job
            alive.append(int(entry))
    return alive


def test_a_sandbox_dies_with_the_process_that_owns_it(tmp_path):
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        init = int(owner.stdout.readline())
        namespace = os.readlink(f"/proc/{init}/ns/pid")
        assert len(_alive_in_namespace(namespace)) >= 3  # init, the holder, the daemon
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
    deadline = time.monotonic() + 10
    while _alive_in_namespace(namespace):
        assert time.monotonic() < deadline, _alive_in_namespace(namespace)
        time.sleep(0.1)
    mounts = open("/proc/self/mountinfo").read()
    assert str(tmp_path) not in mounts
