#!/bin/bash
# What the agent saw in its phase (/app/seen.txt) and what this phase sees now; and what
# the agent's watcher, still running, sees now: only new lines count.
mkdir -p /logs/verifier
seen=$(cat /app/seen.txt 2>/dev/null)
here=$(python3 - 2>/dev/null <<'PY' || echo unreachable
import os, urllib.request
print(urllib.request.urlopen(os.environ["PROBE_URL"], timeout=3).read().decode().strip())
PY
)
sleep 0.5  # a fetch begun before this phase began has ended; later lines are this phase's
before=$(cat /tmp/watch.log 2>/dev/null | wc -l)
sleep 1.5
watcher=$(tail -n +$((before + 1)) /tmp/watch.log 2>/dev/null | sort -u | tr '\n' ' ')
echo "agent phase saw: $seen; verifier phase sees: $here; the watcher now sees: $watcher"
if [ -n "$PROBE_TOKEN" ] && [ "$seen" = "$PROBE_TOKEN" ] && [ "$here" = unreachable ] \
   && grep -qx reached /tmp/watch.log && [ "$watcher" = "unreachable " ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
