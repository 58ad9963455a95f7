#!/bin/sh
# Start the service, then run what the container was started with (Harbor: sleep infinity).
mkdir -p /srv/www
echo "entrypoint-was-here" > /srv/www/index.html
echo "$@" > /srv/entrypoint-args
cd /srv/www && python3 -m http.server 8321 --bind 127.0.0.1 >/dev/null 2>&1 &
exec "$@"
