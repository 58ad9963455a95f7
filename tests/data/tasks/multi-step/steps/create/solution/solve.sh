#!/bin/bash
echo "step 1" > /app/log.txt
