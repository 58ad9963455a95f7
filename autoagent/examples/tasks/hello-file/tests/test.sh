#!/bin/bash
# Reward 1 when /app/greeting.txt holds exactly the requested line.
mkdir -p /logs/verifier
if [ "$(cat /app/greeting.txt 2>/dev/null)" = "Hello, AutoAgent!" ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo "greeting.txt is missing or wrong: $(head -c 200 /app/greeting.txt 2>&1)"
  echo 0 > /logs/verifier/reward.txt
fi
