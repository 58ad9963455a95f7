#!/bin/bash
# Never runs with the sandbox (the task is refused at load); where an environment can
# enforce the allowlist, pypi.org is all the agent reaches, so PROBE_URL is not.
mkdir -p /logs/verifier
if [ "$(cat /app/seen.txt 2>/dev/null)" = unreachable ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
