#!/usr/bin/env bash
# Container entrypoint: one image, one route per role. Every long-running server is
# started with `exec` so it becomes PID 1 and receives the stop signal itself.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: /entrypoint.sh ROUTE [ARGS...]
  web | daphne [ARGS]          Daphne ASGI server on WEB_BIND (0.0.0.0:8000) or the socket systemd passes
  gunicorn [ARGS]              Gunicorn with uvicorn workers (ASGI), /etc/senex/gunicorn.conf.py
  worker | celery-worker [ARGS]  Celery worker on the queues celery,accounts,trading
  beat | celery-beat [ARGS]    Celery beat, schedule in /run/senex
  migrate                      Apply database migrations, then exit
  manage ARGS...               python manage.py ARGS...
  healthcheck                  Probe the role running as PID 1 (used by HEALTHCHECK)
  anything else                Run as given
USAGE
}

log() {
  echo "entrypoint: $*" >&2
}

# Fails early, naming the variable, instead of handing a typo to the server.
require_int() {
  local name=$1 value=$2
  if ! [[ $value =~ ^[0-9]+$ ]] || ((value < 1)); then
    log "$name must be a positive integer, got '$value'; fix it in the container environment"
    exit 64
  fi
}

is_true() {
  case "${1,,}" in
    1 | true | yes | on) return 0 ;;
    0 | false | no | off | "") return 1 ;;
    *)
      log "expected true or false, got '$1'"
      exit 64
      ;;
  esac
}

# Waits for PostgreSQL and Redis unless WAIT_FOR_SERVICES is false. A `--help` anywhere
# in the arguments skips the wait, so help works without a database.
wait_for_services() {
  local arg
  for arg in "$@"; do
    [[ $arg == --help || $arg == -h ]] && return 0
  done
  is_true "${WAIT_FOR_SERVICES:-true}" || return 0
  wait-for-services
}

maybe_migrate() {
  if is_true "${RUN_MIGRATIONS:-false}"; then
    log "RUN_MIGRATIONS is true: applying migrations before starting"
    python manage.py migrate --noinput
  fi
}

# systemd socket activation: podman hands the socket over as fd 3 and sets LISTEN_PID to
# the container's PID 1, which is this shell until it execs the server.
socket_activated() {
  [[ ${LISTEN_FDS:-} == 1 && ${LISTEN_PID:-} == "$$" ]]
}

run_web() {
  wait_for_services "$@"
  maybe_migrate
  local bind=${WEB_BIND:-0.0.0.0:8000}
  if ! [[ $bind =~ ^(.+):([0-9]+)$ ]]; then
    log "WEB_BIND must be HOST:PORT, got '$bind'"
    exit 64
  fi
  if socket_activated; then
    # The passed socket lives in the host's network namespace; the loopback endpoint
    # inside the container is the one the container's health check probes.
    log "starting Daphne on the socket passed by systemd (fd 3) and 127.0.0.1:${BASH_REMATCH[2]}"
    exec daphne --fd 3 --endpoint "tcp:port=${BASH_REMATCH[2]}:interface=127.0.0.1" "$@" \
      senextrader.asgi:application
  fi
  log "starting Daphne on $bind"
  exec daphne --bind "${BASH_REMATCH[1]}" --port "${BASH_REMATCH[2]}" "$@" \
    senextrader.asgi:application
}

run_gunicorn() {
  wait_for_services "$@"
  maybe_migrate
  # Gunicorn adopts a systemd socket itself when LISTEN_PID matches its own PID.
  exec gunicorn --config /etc/senex/gunicorn.conf.py "$@" senextrader.asgi:application
}

run_worker() {
  local concurrency=${CELERY_CONCURRENCY:-2}
  local max_tasks=${CELERY_MAX_TASKS_PER_CHILD:-100}
  require_int CELERY_CONCURRENCY "$concurrency"
  require_int CELERY_MAX_TASKS_PER_CHILD "$max_tasks"
  wait_for_services "$@"
  # SIGTERM makes Celery finish running tasks (warm shutdown) before it exits.
  exec celery --app senextrader worker \
    --queues celery,accounts,trading \
    --concurrency "$concurrency" \
    --max-tasks-per-child "$max_tasks" \
    --loglevel "${LOG_LEVEL:-INFO}" \
    "$@"
}

run_beat() {
  local schedule=${CELERY_BEAT_SCHEDULE:-/run/senex/celerybeat-schedule}
  wait_for_services "$@"
  # An empty --pidfile writes none: the root filesystem is read-only.
  exec celery --app senextrader beat \
    --schedule "$schedule" \
    --pidfile= \
    --loglevel "${LOG_LEVEL:-INFO}" \
    "$@"
}

main() {
  cd /app
  local route=${1:-web}
  shift || true
  case "$route" in
    web | daphne) run_web "$@" ;;
    gunicorn) run_gunicorn "$@" ;;
    worker | celery-worker) run_worker "$@" ;;
    beat | celery-beat) run_beat "$@" ;;
    migrate)
      wait_for_services "$@"
      exec python manage.py migrate --noinput "$@"
      ;;
    manage)
      if (($# == 0)); then
        log "manage needs a command, e.g. 'manage check --deploy'"
        exit 64
      fi
      exec python manage.py "$@"
      ;;
    healthcheck) exec healthcheck "$@" ;;
    help | --help | -h) usage ;;
    *) exec "$route" "$@" ;;
  esac
}

main "$@"
