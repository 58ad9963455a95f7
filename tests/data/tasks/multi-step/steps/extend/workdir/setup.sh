#!/bin/bash
# Harbor uploads steps/extend/workdir/ into the working directory and runs this before
# the step's agent; the step's healthcheck then waits for the service it starts.
mkdir -p /srv/step2 && echo "served for step 2" > /srv/step2/index.html
cd /srv/step2 \
  && setsid nohup python3 -m http.server 8322 --bind 127.0.0.1 >/dev/null 2>&1 < /dev/null &
