#!/bin/bash
# What the agent saw in its phase (/app/seen.txt) and what this phase sees now.
mkdir -p /logs/verifier
seen=$(cat /app/seen.txt 2>/dev/null)
here=$(python3 - 2>/dev/null <<'PY' || echo unreachable
import os, urllib.request
print(urllib.request.urlopen(os.environ["PROBE_URL"], timeout=3).read().decode().strip())
PY
)
echo "agent phase saw: $seen; verifier phase sees: $here"
agent_should_see=unreachable
verifier_should_see="$PROBE_TOKEN"
if [ -n "$PROBE_TOKEN" ] && [ "$seen" = "$agent_should_see" ] \
   && [ "$here" = "$verifier_should_see" ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
