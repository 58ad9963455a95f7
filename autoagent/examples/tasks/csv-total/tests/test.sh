#!/bin/bash
# Reward 1 when /app/total.txt holds the north region's total, 1221.00.
mkdir -p /logs/verifier
python3 - <<'PY'
from pathlib import Path
try:
    ok = abs(float(Path("/app/total.txt").read_text().strip()) - 1221.00) < 0.005
except Exception as error:
    print(f"cannot read /app/total.txt: {error}")
    ok = False
Path("/logs/verifier/reward.txt").write_text("1" if ok else "0")
PY
