#!/bin/bash
# As root ([verifier] user): the expected greeting is root's alone to read.
mkdir -p /logs/verifier
if [ "$(id -u)" = 0 ] \
   && [ "$(stat -c %U /app/greeting.txt 2>/dev/null)" = builder ] \
   && [ "$(cat /app/greeting.txt)" = "$(cat /root/expected-greeting)" ]; then
  echo 1 > /logs/verifier/reward.txt
else
  echo 0 > /logs/verifier/reward.txt
fi
