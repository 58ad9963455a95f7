"""The box the harness runs in: code the meta-agent wrote, kept away from the answers.

A candidate harness is imported and run inside a bubblewrap box (`box.py`) that sees
the Python environment and the harness files read-only, a scratch directory and the
trial's logs directory, the network for its model calls, and no other file and no
environment variable of the host but the model's credentials. Its environment
operations (exec, uploads, downloads) reach the task's sandbox over a pipe, through
the process that runs the trial (`agent.py`, which Harbor runs; `runner.py` is the
box's side).
"""

BOXED_AGENT = "autoagent.harness_box.agent:BoxedAgent"
