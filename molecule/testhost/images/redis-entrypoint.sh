#!/bin/bash
# Stand-in for the official redis image's entrypoint: takes redis-server arguments or a config
# file path, keeps data in /data, starts as root and drops to redis (uid 999).
set -euo pipefail

# Options or a config file alone mean "redis-server with these", like the official image.
if [ "${1#-}" != "$1" ] || [ "${1%.conf}" != "$1" ]; then
  set -- redis-server "$@"
fi

if [ "$1" = 'redis-server' ]; then
  # The official image is built without protected mode; keep that unless a config file decides.
  first=${2:-}
  if [ "${first%.conf}" = "$first" ]; then
    set -- redis-server --protected-mode no "${@:2}"
  fi
  if [ "$(id -u)" = '0' ]; then
    find /data \! -user redis -exec chown redis '{}' +
    exec setpriv --reuid=redis --regid=redis --init-groups "$@"
  fi
fi
exec "$@"
