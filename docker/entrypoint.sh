#!/usr/bin/env bash
# Container entrypoint: one image, one route per role. Every long-running server is
# started with `exec` so it becomes PID 1 and receives the stop signal itself.
set -euo pipefail

usage() {
  cat <<'USAGE'
Usage: /entrypoint.sh ROUTE [ARGS...]
  daphne | web [ARGS]          Daphne ASGI server on WEB_BIND (0.0.0.0:8000) or the socket systemd passes
  gunicorn [ARGS]              Gunicorn with uvicorn workers (ASGI), /etc/senex/gunicorn.conf.py
  worker | celery-worker [ARGS]  Celery worker named CELERY_WORKER_NAME (celery) on the queues
                               in CELERY_WORKER_QUEUES (comma-separated; unset: every queue
                               the app declares), CELERY_CONCURRENCY processes (2)
  beat | celery-beat [ARGS]    Celery beat, schedule file CELERY_BEAT_SCHEDULE_FILE
                               (/run/senex/celerybeat-schedule)
  migrate                      Apply database migrations, then exit
  manage ARGS...               python manage.py ARGS...
  healthcheck                  Probe the role running as PID 1 (used by HEALTHCHECK)
  anything else                Run as given
The app comes from the image's build arguments: SENEX_ASGI_APP (senextrader.asgi:application)
and SENEX_CELERY_APP (senextrader), see docs/app-contract.md.
USAGE
}

# LOG_FORMAT: json (one JSON object a line) or plain; json in a container (CONTAINER_MODE)
# unless set. Resolved once here and exported, so the app, Gunicorn's configuration and
# wait-for-services agree on it.
resolve_log_format() {
  local container=${CONTAINER_MODE:-false}
  case "${container,,}" in
    1 | true | yes | on) container=json ;;
    *) container=plain ;;
  esac
  LOG_FORMAT=${LOG_FORMAT:-$container}
  LOG_FORMAT=${LOG_FORMAT,,}
  if [[ $LOG_FORMAT != json && $LOG_FORMAT != plain ]]; then
    echo "entrypoint: LOG_FORMAT must be json or plain, got '$LOG_FORMAT'" >&2
    exit 64
  fi
  export LOG_FORMAT
}

json_string() {
  local text=$1
  text=${text//\\/\\\\}
  text=${text//\"/\\\"}
  text=${text//$'\n'/\\n}
  text=${text//$'\r'/\\r}
  text=${text//$'\t'/\\t}
  printf '"%s"' "$text"
}

# One line on stderr, a JSON object with the app's fields when LOG_FORMAT is json.
log_at() {
  local level=$1
  shift
  if [[ $LOG_FORMAT == json ]]; then
    printf '{"timestamp": "%s", "level": "%s", "logger": "entrypoint", "event": %s, "revision": %s}\n' \
      "$(date -u +%Y-%m-%dT%H:%M:%S.%6NZ)" "$level" "$(json_string "$*")" \
      "$(json_string "${SENEX_VERSION:-dev}")" >&2
  else
    echo "entrypoint: $*" >&2
  fi
}

log() {
  log_at info "$@"
}

log_error() {
  log_at error "$@"
}

ASGI_APP=${SENEX_ASGI_APP:-senextrader.asgi:application}
CELERY_APP=${SENEX_CELERY_APP:-senextrader}

# Fails early, naming the variable, instead of handing a typo to the server.
require_int() {
  local name=$1 value=$2
  if ! [[ $value =~ ^[0-9]+$ ]] || ((value < 1)); then
    log_error "$name must be a positive integer, got '$value'; fix it in the container environment"
    exit 64
  fi
}

# A Celery queue or node name: what a systemd instance name and a queue name have in common.
NAME='[A-Za-z0-9_.-]+'

require_name() {
  local name=$1 value=$2
  if ! [[ $value =~ ^${NAME}$ ]]; then
    log_error "$name must be a name of letters, digits, '_', '-' or '.', got '$value'"
    exit 64
  fi
}

require_names() {
  local name=$1 value=$2
  if ! [[ $value =~ ^${NAME}(,${NAME})*$ ]]; then
    log_error "$name must be names of letters, digits, '_', '-' or '.' separated by commas, got '$value'"
    exit 64
  fi
}

is_true() {
  case "${1,,}" in
    1 | true | yes | on) return 0 ;;
    0 | false | no | off | "") return 1 ;;
    *)
      log_error "expected true or false, got '$1'"
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
    # migrate's report is plain text: in JSON mode this line and the next stand in for it.
    if [[ $LOG_FORMAT == json ]]; then
      python manage.py migrate --noinput --verbosity 0
      log "migrations applied"
    else
      python manage.py migrate --noinput
    fi
  fi
}

# systemd socket activation: podman hands the socket over as fd 3 and sets LISTEN_PID to
# the container's PID 1, which is this shell until it execs the server.
socket_activated() {
  [[ ${LISTEN_FDS:-} == 1 && ${LISTEN_PID:-} == "$$" ]]
}

run_daphne() {
  wait_for_services "$@"
  maybe_migrate
  local bind=${WEB_BIND:-0.0.0.0:8000}
  # Daphne's access log is plain text on stdout; in JSON mode the app's own line for each
  # request (django-structlog's request_finished) stands in for it.
  if [[ $LOG_FORMAT == json ]]; then
    set -- --access-log /dev/null "$@"
  fi
  if ! [[ $bind =~ ^(.+):([0-9]+)$ ]]; then
    log_error "WEB_BIND must be HOST:PORT, got '$bind'"
    exit 64
  fi
  if socket_activated; then
    # The passed socket lives in the host's network namespace; the loopback endpoint
    # inside the container is the one the container's health check probes.
    log "starting Daphne on the socket passed by systemd (fd 3) and 127.0.0.1:${BASH_REMATCH[2]}"
    exec daphne --fd 3 --endpoint "tcp:port=${BASH_REMATCH[2]}:interface=127.0.0.1" "$@" \
      "$ASGI_APP"
  fi
  log "starting Daphne on $bind"
  exec daphne --bind "${BASH_REMATCH[1]}" --port "${BASH_REMATCH[2]}" "$@" \
    "$ASGI_APP"
}

# prometheus_client's multiprocess mode: each worker writes its metrics to files in this
# directory, which /metrics adds up. Emptied at each start: the files of an earlier run's
# workers would count again. The deploy mounts a tmpfs at /run/senex.
prepare_metrics_dir() {
  is_true "${METRICS_ENABLED:-false}" || return 0
  export PROMETHEUS_MULTIPROC_DIR=${PROMETHEUS_MULTIPROC_DIR:-/run/senex/prometheus}
  rm -rf "$PROMETHEUS_MULTIPROC_DIR"
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
}

run_gunicorn() {
  wait_for_services "$@"
  maybe_migrate
  prepare_metrics_dir
  # Gunicorn adopts a systemd socket itself when LISTEN_PID matches its own PID.
  exec gunicorn --config /etc/senex/gunicorn.conf.py "$@" "$ASGI_APP"
}

# One worker per instance of the senex-worker@ template: the instance passes its name and
# its share of the queues, so `celery inspect` tells which instance answered.
# Celery prints a banner of plain text at startup; in JSON mode it stays quiet (its log
# lines still say it is ready).
celery_global_args() {
  CELERY_GLOBAL_ARGS=(--app "$CELERY_APP")
  if [[ $LOG_FORMAT == json ]]; then
    CELERY_GLOBAL_ARGS+=(--quiet)
  fi
}

run_worker() {
  local concurrency=${CELERY_CONCURRENCY:-2}
  local max_tasks=${CELERY_MAX_TASKS_PER_CHILD:-100}
  local name=${CELERY_WORKER_NAME:-celery}
  local queues=${CELERY_WORKER_QUEUES:-}
  local -a queue_args=()
  require_int CELERY_CONCURRENCY "$concurrency"
  require_int CELERY_MAX_TASKS_PER_CHILD "$max_tasks"
  require_name CELERY_WORKER_NAME "$name"
  # Without --queues the worker consumes every queue the settings declare (CELERY_TASK_QUEUES).
  if [[ -n $queues ]]; then
    require_names CELERY_WORKER_QUEUES "$queues"
    queue_args=(--queues "$queues")
  fi
  wait_for_services "$@"
  log "starting Celery worker $name on the queues: ${queues:-every queue the app declares}"
  # SIGTERM makes Celery finish running tasks (warm shutdown) before it exits.
  celery_global_args
  exec celery "${CELERY_GLOBAL_ARGS[@]}" worker \
    --hostname "${name}@%h" \
    "${queue_args[@]}" \
    --concurrency "$concurrency" \
    --max-tasks-per-child "$max_tasks" \
    --loglevel "${LOG_LEVEL:-INFO}" \
    "$@"
}

run_beat() {
  # CELERY_BEAT_SCHEDULE names the schedule itself in the settings; the file has its own name.
  if [[ -v CELERY_BEAT_SCHEDULE ]]; then
    log_error "CELERY_BEAT_SCHEDULE is no longer read here; set CELERY_BEAT_SCHEDULE_FILE instead"
    exit 64
  fi
  local schedule=${CELERY_BEAT_SCHEDULE_FILE:-/run/senex/celerybeat-schedule}
  wait_for_services "$@"
  # An empty --pidfile writes none: the root filesystem is read-only.
  celery_global_args
  exec celery "${CELERY_GLOBAL_ARGS[@]}" beat \
    --schedule "$schedule" \
    --pidfile= \
    --loglevel "${LOG_LEVEL:-INFO}" \
    "$@"
}

main() {
  resolve_log_format
  cd /app
  local route=${1:-daphne}
  shift || true
  case "$route" in
    daphne | web) run_daphne "$@" ;;
    gunicorn) run_gunicorn "$@" ;;
    worker | celery-worker) run_worker "$@" ;;
    beat | celery-beat) run_beat "$@" ;;
    migrate)
      wait_for_services "$@"
      exec python manage.py migrate --noinput "$@"
      ;;
    manage)
      if (($# == 0)); then
        log_error "manage needs a command, e.g. 'manage check --deploy'"
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
