#!/bin/bash
# Runs as the image's user, who owns /app: no sudo needed, none available.
echo "hello from $(id -un)" > /app/greeting.txt
