#!/bin/bash
mkdir -p /logs/verifier
if [ "$(cat /app/log.txt 2>/dev/null)" = "step 1" ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
