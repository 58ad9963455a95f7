#!/bin/bash
echo 'Hello, AutoAgent!' > /app/greeting.txt
