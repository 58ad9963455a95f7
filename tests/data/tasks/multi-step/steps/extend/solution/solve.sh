#!/bin/bash
echo "step 2" >> /app/log.txt
python3 - >> /app/log.txt <<'PY'
import urllib.request
print(urllib.request.urlopen("http://127.0.0.1:8322/").read().decode().strip())
PY
