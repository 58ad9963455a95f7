#!/bin/bash
python3 -c "import os, urllib.request; print(urllib.request.urlopen(os.environ['SERVER_URL'] + '/secret').read().decode())" > /app/answer.txt
