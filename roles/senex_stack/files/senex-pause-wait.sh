#!/bin/sh
# Holds a start of web while a deploy changes the credentials it would start with (the deploy
# creates PAUSE_FILE, restarts Redis and the migrations, then removes it): requests that
# arrive meanwhile wait in web's socket instead of reaching a web server that cannot sign in.
# Gives up after MAX seconds, so a deploy that died cannot hold web for good.
# Usage: senex-pause-wait.sh PAUSE_FILE [MAX]
set -eu
pause_file=$1 max=${2:-240} waited=0
while [ -e "$pause_file" ] && [ "$waited" -lt "$max" ]; do
  sleep 1
  waited=$((waited + 1))
done
