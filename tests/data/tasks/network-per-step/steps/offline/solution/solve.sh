#!/bin/bash
# Fetch PROBE_URL if this phase has the network; otherwise say it could not.
python3 - > /app/seen-1.txt 2>/dev/null <<'PY' || echo unreachable > /app/seen-1.txt
import os, urllib.request
print(urllib.request.urlopen(os.environ["PROBE_URL"], timeout=3).read().decode().strip())
PY
