#!/bin/bash
# The second step's agent phase is back on the environment's public policy.
mkdir -p /logs/verifier
seen=$(cat /app/seen-2.txt 2>/dev/null)
echo "agent phase saw: $seen"
if [ -n "$PROBE_TOKEN" ] && [ "$seen" = "$PROBE_TOKEN" ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
