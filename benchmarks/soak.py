"""An unattended night compressed into minutes, with faults injected at fixed rates.

    uv run python benchmarks/soak.py --minutes 12

`autoagent run` (the real CLI: Harbor, sandboxes, git, LiteLLM) runs on the example tasks
plus a task whose verifier writes a 1.2 MB reward.json. Both models are served by a fake
OpenAI-compatible server on 127.0.0.1 that replays the bundled scripts (the task agent:
scripted/examples; the meta-agent: one small harness edit per experiment) and injects, by
request number: 429s, 500s, hangs (no answer for --hang-sec, then the connection drops) and
empty replies (`choices: []`). Besides: a worker process killed every --kill-worker-sec, a
stale .git/index.lock planted every --lock-sec, and the whole run SIGKILLed (in the middle
of an evaluation) and resumed after every --kill-run-every decided experiments.

It reports experiments decided, faults injected and survived (a fault is survived when the
run went on deciding after it: the run never exited on its own before the deadline), ledger
rows lost (decided before a kill, missing or undecided after) and duplicated (results.tsv
rows beyond runs.jsonl's decided experiments), and the share of wall time spent on faults:
1 - (what a clean run needs for the same decisions) / wall time, from a clean calibration
run with the same server and no faults (skip it with --clean-sec).
"""

from __future__ import annotations

import argparse
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

from autoagent import workspace
from autoagent.ledger import Ledger
from autoagent.scripted import Script

AUTOAGENT = str(Path(sys.executable).parent / "autoagent")
HUGE_REWARD = (
    "python3 -c \"import json; json.dump({'reward': 1, **{f'k{i}': 0 for i in range(100000)}}, "
    "open('/logs/verifier/reward.json', 'w'))\""
)
META_MARK = "You are the meta-agent of AutoAgent"


class FaultyServer:
    """Answers chat completions from the scripts; every `every[kind]`-th request is a fault."""

    def __init__(self, every: dict[str, int], hang_sec: float) -> None:
        self.every, self.hang_sec = every, hang_sec
        self.count = 0
        self.injected = dict.fromkeys(every, 0)
        self.lock = threading.Lock()
        self.tasks = Script.load("examples")
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fault = server.fault()
                if fault == "hang":
                    time.sleep(server.hang_sec)
                    self.close_connection = True
                    return
                if fault in ("429", "500"):
                    return self.send(int(fault), {"error": {"message": f"injected {fault}", "type": "server_error"}})
                choices = [] if fault == "empty" else [server.answer(body["messages"])]
                self.send(200, {"id": "chatcmpl-soak", "object": "chat.completion", "created": 0,
                                "model": body.get("model"), "choices": choices,
                                "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}})  # fmt: skip

            def send(self, status: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.http = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.http.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.http.server_address[1]}/v1"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def fault(self) -> str | None:
        with self.lock:
            self.count += 1
            for kind, every in self.every.items():
                if every and self.count % every == 0:
                    self.injected[kind] += 1
                    return kind
        return None

    def answer(self, messages: list[dict]) -> dict:
        system = next((m.get("content") or "" for m in messages if m["role"] == "system"), "")
        turn = _meta_turn(messages) if META_MARK in system else self.tasks.turn(messages)
        calls = [{"id": f"call_{uuid.uuid4().hex[:8]}", "type": "function",
                  "function": {"name": c["name"], "arguments": json.dumps(c["arguments"])}}
                 for c in turn.get("tool_calls", [])]  # fmt: skip
        message = {"role": "assistant", "content": turn.get("content") or "", **({"tool_calls": calls} if calls else {})}
        return {"index": 0, "message": message, "finish_reason": "tool_calls" if calls else "stop"}


def _meta_turn(messages: list[dict]) -> dict:
    """One edit (MAX_TURNS one up, as the brief's harness has it), then submit."""
    brief = next(m["content"] for m in messages if m["role"] == "user")
    turns = int(re.search(r"MAX_TURNS = (\d+)", brief).group(1))
    if not any(m["role"] == "assistant" for m in messages):
        return {"tool_calls": [{"name": "edit_file", "arguments": {
            "path": "agent.py", "old_text": f"MAX_TURNS = {turns}", "new_text": f"MAX_TURNS = {turns + 1}"}}]}  # fmt: skip
    return {"tool_calls": [{"name": "submit", "arguments": {
        "description": f"{turns + 1} turns", "hypothesis": "more room", "expected_flips": [],
        "overfitting": "Yes, it is general."}}]}  # fmt: skip


def make_workspace(root: Path, url: str) -> workspace.Workspace:
    ws = workspace.init(root, model="openai/soak-task")
    task = ws.tasks_dir / "huge-reward"
    shutil.copytree(ws.tasks_dir / "hello-file", task)
    (task / "tests" / "test.sh").write_text(f"#!/bin/bash\nmkdir -p /logs/verifier\n{HUGE_REWARD}\n")
    toml = ws.root / "autoagent.toml"
    text = toml.read_text().replace('# api_base = "http://localhost:8000/v1"', f'api_base = "{url}"')
    text = text.replace('# model = "anthropic/claude-sonnet-4-5"', 'model = "openai/soak-meta"')
    toml.write_text(text.replace("baseline_attempts = 2", "baseline_attempts = 1"))
    subprocess.run(["git", "commit", "-qam", "soak settings"], cwd=ws.root, check=True)
    return ws


def decided(root: Path) -> dict[int, str]:
    """Experiment id -> final status, for the experiments after the baseline."""
    return {e.id: e.status for e in Ledger(root).experiments() if e.final and e.id > 0 and e.status != "interrupted"}


def phase(root: Path) -> str | None:
    try:
        return json.loads((root / ".autoagent" / "live.json").read_text()).get("phase")
    except (OSError, ValueError):
        return None


def kill_a_worker(run: subprocess.Popen) -> bool:
    """SIGKILL one evaluation worker of `run`, as the OOM killer or an operator might."""
    for entry in Path("/proc").iterdir():
        try:
            if not entry.name.isdigit() or b"autoagent.evaluate._worker" not in (entry / "cmdline").read_bytes():
                continue
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        if parent == run.pid:
            os.kill(int(entry.name), signal.SIGKILL)
            return True
    return False


def soak(root: Path, server: FaultyServer, seconds: float, args, env: dict) -> dict:
    ws = make_workspace(root, server.url)
    started = time.monotonic()
    counts = {"worker killed": 0, "stale git lock": 0, "run SIGKILLed and resumed": 0}
    lost: set[int] = set()
    exits: list[int] = []
    log = open(root / "soak.log", "w")
    next_worker, next_lock = started + args.kill_worker_sec, started + args.lock_sec
    while time.monotonic() - started < seconds:
        run = subprocess.Popen([AUTOAGENT, "run", "--plain"], cwd=ws.root, stdout=log, stderr=subprocess.STDOUT,
                               env=env, start_new_session=True)  # fmt: skip
        at_start = len(decided(ws.root))
        while run.poll() is None and time.monotonic() - started < seconds:
            time.sleep(0.5)
            now = time.monotonic()
            if args.kill_worker_sec and now > next_worker:
                counts["worker killed"] += kill_a_worker(run)
                next_worker = now + args.kill_worker_sec
            if args.lock_sec and now > next_lock:
                (ws.root / ".git" / "index.lock").touch()  # as a git killed mid-command leaves it
                counts["stale git lock"] += 1
                next_lock = now + args.lock_sec
            due = args.kill_run_every and len(decided(ws.root)) - at_start >= args.kill_run_every
            if due and phase(ws.root) == "evaluating":  # the hard case: in the middle of an evaluation
                before = decided(ws.root)
                os.killpg(run.pid, signal.SIGKILL)
                run.wait()
                counts["run SIGKILLed and resumed"] += 1
                time.sleep(1)
                after = decided(ws.root)
                lost |= {i for i, status in before.items() if after.get(i) != status}
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGINT)  # the deadline: a clean stop
            run.wait(timeout=180)
        elif run.returncode not in (0, -signal.SIGKILL):
            exits.append(run.returncode)  # it died of something: a fault not survived
            break
    wall = time.monotonic() - started
    final = [e for e in Ledger(ws.root).experiments() if e.final]
    tsv_rows = (ws.root / "results.tsv").read_text().splitlines()[1:]
    bad_rewards = sum("InvalidReward" in (t.get("error") or "") for e in final for t in e.trials)
    injected = {**{f"model {k}": v for k, v in server.injected.items()}, **counts, "bad reward file (trials)": bad_rewards}
    statuses = dict(Counter(e.status for e in final if e.id > 0))
    crashes = [e.reason[:160] for e in final if e.status == "crash"]
    return {"wall_sec": wall, "decided": len(decided(ws.root)), "statuses": statuses, "crashes": crashes,
            "injected": injected,
            "run exits with an error": exits, "rows lost": len(lost), "rows duplicated": max(0, len(tsv_rows) - len(final)),
            "tsv agrees": [r.split("\t")[5] for r in tsv_rows] == [e.status for e in final], "log": str(root / "soak.log")}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=12)
    parser.add_argument("--clean-minutes", type=float, default=4, help="The calibration run without faults.")
    parser.add_argument("--clean-sec", type=float, help="Seconds per decision without faults (skips calibration).")
    parser.add_argument("--every-429", type=int, default=7, help="Every n-th model request is a 429 (0: never).")
    parser.add_argument("--every-500", type=int, default=11)
    parser.add_argument("--every-hang", type=int, default=53)
    parser.add_argument("--every-empty", type=int, default=37)
    parser.add_argument("--hang-sec", type=float, default=20)
    parser.add_argument("--kill-worker-sec", type=float, default=150)
    parser.add_argument("--lock-sec", type=float, default=60)
    parser.add_argument("--kill-run-every", type=int, default=3, help="Decided experiments between SIGKILLs.")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    env = {**os.environ, "OPENAI_API_KEY": "sk-soak", "HARBOR_TELEMETRY": "0"}
    with tempfile.TemporaryDirectory(prefix="autoagent-soak-") as scratch:
        clean_sec = args.clean_sec
        if clean_sec is None:
            clean = FaultyServer({}, 0)
            calm = argparse.Namespace(kill_worker_sec=0, lock_sec=0, kill_run_every=0)
            result = soak(Path(scratch) / "clean", clean, args.clean_minutes * 60, calm, env)
            clean_sec = result["wall_sec"] / max(1, result["decided"])
            print(f"clean: {result['decided']} decided in {result['wall_sec']:.0f} s: {clean_sec:.0f} s each")
        server = FaultyServer({"hang": args.every_hang, "empty": args.every_empty, "500": args.every_500,
                               "429": args.every_429}, args.hang_sec)  # fmt: skip
        result = soak(Path(scratch) / "faulty", server, args.minutes * 60, args, env)
        result["clean_sec_per_decision"] = clean_sec
        result["share of wall time on faults"] = max(0.0, 1 - result["decided"] * clean_sec / result["wall_sec"])
        result["faults injected"] = sum(result["injected"].values())
        result["faults survived"] = result["faults injected"] if not result["run exits with an error"] else "see exits"
        print(json.dumps(result, indent=1))
        if args.json:
            args.json.write_text(json.dumps(result, indent=1))
        if result["run exits with an error"]:
            print(Path(result["log"]).read_text()[-3000:])


if __name__ == "__main__":
    main()
