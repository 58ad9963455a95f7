#!/bin/bash
cat > /tmp/fetch.py <<'PY'
import os, urllib.request
print(urllib.request.urlopen(os.environ["PROBE_URL"], timeout=3).read().decode().strip())
PY
python3 /tmp/fetch.py > /app/seen.txt 2>/dev/null || echo unreachable > /app/seen.txt
# A daemon that outlives the agent's phase: the verifier's phase must cut it off too.
cat > /tmp/watch.sh <<'SH'
while true; do
  if python3 /tmp/fetch.py >/dev/null 2>&1; then echo reached; else echo unreachable; fi \
    >> /tmp/watch.log
  sleep 0.2
done
SH
setsid nohup bash /tmp/watch.sh >/dev/null 2>&1 < /dev/null &
while [ ! -s /tmp/watch.log ]; do sleep 0.1; done
