#!/bin/bash
# Runs in the verifier's own environment: the agent's files are not here (no
# /app/input.txt), only the artifact Harbor handed over.
mkdir -p /logs/verifier
if [ "$(cat /etc/environment-role)" = verifier ] && [ ! -e /app/input.txt ] \
   && [ "$(tr -d ' ' < /app/count.txt 2>/dev/null)" = 3 ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
