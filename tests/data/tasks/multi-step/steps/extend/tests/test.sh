#!/bin/bash
# What the first step left is still there: both steps share one environment. The
# first step's tests are not (Harbor clears /tests between steps).
mkdir -p /logs/verifier
expected=$(printf 'step 1\nstep 2\nserved for step 2')
if [ "$(cat /app/log.txt 2>/dev/null)" = "$expected" ] && [ ! -e /tests/create-marker ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
