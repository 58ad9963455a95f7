#!/bin/bash
# The step's agent phase had no network; this verifier phase, the environment's public
# policy, has it back.
mkdir -p /logs/verifier
seen=$(cat /app/seen-1.txt 2>/dev/null)
here=$(python3 - 2>/dev/null <<'PY' || echo unreachable
import os, urllib.request
print(urllib.request.urlopen(os.environ["PROBE_URL"], timeout=3).read().decode().strip())
PY
)
echo "agent phase saw: $seen; verifier phase sees: $here"
if [ -n "$PROBE_TOKEN" ] && [ "$seen" = unreachable ] && [ "$here" = "$PROBE_TOKEN" ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
