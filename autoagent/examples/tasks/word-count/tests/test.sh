#!/bin/bash
# Reward 1 when /app/count.txt holds the poem's word count (21).
mkdir -p /logs/verifier
if [ "$(tr -d '[:space:]' < /app/count.txt 2>/dev/null)" = "21" ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo "expected 21, found: $(head -c 200 /app/count.txt 2>&1)"
  echo 0 > /logs/verifier/reward.txt
fi
