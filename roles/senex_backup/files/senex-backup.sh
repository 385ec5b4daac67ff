#!/bin/sh
# Database backup, run by senex-backup.service inside the PostgreSQL image (POSIX sh: the
# official image's Debian and Alpine variants both have it). Writes one pg_dump custom-format
# file named after the UTC time, then removes the oldest until SENEX_BACKUP_KEEP are left.
# Connection: PGHOST, PGPORT, PGUSER, PGDATABASE from the environment; the password only from
# the mounted Podman secret, through a private pgpass file, never an argument or a variable
# of any process's environment.
set -eu

dir=${SENEX_BACKUP_DIR:-/backups}
keep=${SENEX_BACKUP_KEEP:-7}
password_file=${SENEX_BACKUP_PASSWORD_FILE:?the unit names the mounted secret}

log() {
  echo "senex-backup: $*"
}

case $keep in
  '' | *[!0-9]*) keep=0 ;;
  *) ;;
esac
if [ "$keep" -lt 1 ]; then
  log "SENEX_BACKUP_KEEP must be a positive integer, got '${SENEX_BACKUP_KEEP:-}'" >&2
  exit 64
fi
if [ ! -d "$dir" ] || [ ! -w "$dir" ]; then
  log "$dir is not a writable directory" >&2
  exit 73
fi

umask 077
PGPASSFILE=$(mktemp)
export PGPASSFILE
partial=
cleanup() {
  rm -f "$PGPASSFILE"
  if [ -n "$partial" ]; then
    rm -f "$partial"
  fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# pgpass format: any host, port, database and user; backslash and colon escaped.
sed -e 's/[\\:]/\\&/g' -e 's/^/*:*:*:*:/' "$password_file" >"$PGPASSFILE"

# A dump killed half-way (timeout, power loss) never counts as a backup.
rm -f "$dir"/.senex-*.dump.partial
name="senex-$(date -u +%Y%m%dT%H%M%SZ).dump"
partial="$dir/.$name.partial"
pg_dump --format=custom --no-password --file="$partial"
mv -f "$partial" "$dir/$name"
partial=
log "wrote $name ($(wc -c <"$dir/$name" | tr -d ' ') bytes)"

# The names sort by time, so the glob lists the oldest first.
set -- "$dir"/senex-????????T??????Z.dump
if [ ! -e "$1" ]; then
  set --
fi
excess=$(($# - keep))
while [ "$excess" -gt 0 ]; do
  rm -f "$1"
  log "removed ${1##*/} (keeping the newest $keep)"
  shift
  excess=$((excess - 1))
done
