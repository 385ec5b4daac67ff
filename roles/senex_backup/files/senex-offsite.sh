#!/bin/sh
# Off-site copies of Senex Trader's backups with restic, run as the service user by
# senex-offsite.service (backup), senex-offsite-check.service (check) and restore.yml (fetch,
# volumes); `status` is the one command that says how old the last good snapshot is.
# Everything comes from the environment file of the units (never from arguments): the
# repository (RESTIC_REPOSITORY), the password as a file (RESTIC_PASSWORD_FILE), the backend's
# credentials, and the settings below. restic runs inside the user namespace of rootless
# Podman (podman unshare), where the volumes' files keep the owners the containers gave them.
#   senex-offsite.sh backup | check | status | fetch SNAPSHOT DIR | volumes DIR | restic ARGS...
set -eu

log() {
  echo "senex-offsite: $*"
}

fail() {
  log "$*" >&2
  exit 1
}

state=${SENEX_BACKUP_STATE:-$HOME/.local/state/senex/offsite-last-success}
# The names senex-backup.sh gives its dumps; they sort by time.
dump_glob='senex-????????T??????Z.dump'
max_age=${SENEX_BACKUP_MAX_AGE:-7200}

# Several hosts may share one repository: a command that finds it locked (another host's
# prune, say) waits up to 10 minutes for the lock instead of failing at once.
run_restic() {
  if [ -n "${SENEX_BACKUP_SFTP_COMMAND:-}" ]; then
    set -- --option "sftp.command=$SENEX_BACKUP_SFTP_COMMAND" "$@"
  fi
  podman unshare restic --retry-lock 10m "$@"
}

need_repository() {
  : "${RESTIC_REPOSITORY:?senex-offsite: RESTIC_REPOSITORY is not set}"
  : "${RESTIC_PASSWORD_FILE:?senex-offsite: RESTIC_PASSWORD_FILE is not set}"
  [ -r "$RESTIC_PASSWORD_FILE" ] || fail "cannot read the repository password file"
}

volume_path() {
  podman volume inspect --format '{{.Mountpoint}}' "$1"
}

backup() {
  need_repository
  dir=${SENEX_BACKUP_DIR:?senex-offsite: SENEX_BACKUP_DIR is not set}
  # The dump senex-backup.service has just written (the names sort by time).
  dump=
  for f in "$dir"/$dump_glob; do
    [ -e "$f" ] && dump=$f
  done
  [ -n "$dump" ] || fail "no dump in $dir"
  set -- "$dump"
  for volume in ${SENEX_BACKUP_VOLUMES:-}; do
    path=$(volume_path "$volume") || fail "no volume $volume"
    set -- "$@" "$path"
  done

  # First run against an empty repository: create it. Any other failure to read it stops here.
  if ! run_restic cat config >/dev/null 2>&1; then
    log "no repository yet at the configured location: initialising it"
    run_restic init
  fi

  run_restic backup --quiet --json --tag senex --host "${SENEX_BACKUP_HOST:?}" "$@" >"$dir/.offsite-summary"
  snapshot=$(sed -n 's/.*"message_type":"summary".*"snapshot_id":"\([0-9a-f]*\)".*/\1/p' "$dir/.offsite-summary")
  rm -f "$dir/.offsite-summary"
  [ -n "$snapshot" ] || fail "restic backup reported no snapshot"
  log "stored snapshot $snapshot: ${dump##*/} ${SENEX_BACKUP_VOLUMES:-}"

  # Grouped by host and tag, not by paths: every snapshot names another dump file.
  run_restic forget --prune --quiet --tag senex --host "$SENEX_BACKUP_HOST" --group-by host,tags \
    --keep-hourly "${SENEX_BACKUP_KEEP_HOURLY:-24}" --keep-daily "${SENEX_BACKUP_KEEP_DAILY:-7}" \
    --keep-weekly "${SENEX_BACKUP_KEEP_WEEKLY:-4}" --keep-monthly "${SENEX_BACKUP_KEEP_MONTHLY:-12}"

  mkdir -p "${state%/*}"
  printf '%s %s\n' "$(date -u +%s)" "$snapshot" >"$state.new"
  mv -f "$state.new" "$state"
  log "pruned by the retention; last good snapshot $snapshot"
}

check() {
  need_repository
  run_restic check --read-data-subset "${SENEX_BACKUP_CHECK_SUBSET:-5%}"
}

# Prints "last good snapshot ID, N s ago" and fails when there is none or it is older than
# SENEX_BACKUP_MAX_AGE seconds. Needs no repository access, so monitoring can run it.
status() {
  if [ ! -r "$state" ]; then
    echo "senex_backup_offsite_age_seconds -1"
    fail "no off-site backup has succeeded on this host"
  fi
  read -r when snapshot <"$state"
  age=$(($(date -u +%s) - when))
  echo "senex_backup_offsite_age_seconds $age"
  echo "senex_backup_offsite_last_snapshot $snapshot"
  [ "$age" -le "$max_age" ] || fail "the last good snapshot $snapshot is $age s old (more than $max_age s)"
}

# Restores SNAPSHOT into DIR (empty) and moves its dump into SENEX_BACKUP_DIR; prints the
# dump's name last, for restore.yml.
fetch() {
  need_repository
  snapshot=$1 target=$2
  dir=${SENEX_BACKUP_DIR:?senex-offsite: SENEX_BACKUP_DIR is not set}
  podman unshare rm -rf "$target"
  mkdir -p "$target"
  run_restic restore "$snapshot" --tag senex --target "$target"
  dump=$(find "$target" -type f -name "$dump_glob" | sort | tail -n 1)
  [ -n "$dump" ] || fail "snapshot $snapshot holds no dump"
  mv -f "$dump" "$dir/${dump##*/}"
  chmod 0600 "$dir/${dump##*/}"
  echo "restored-dump ${dump##*/}"
}

# Replaces every volume a fetched snapshot holds (…/volumes/NAME/_data) with its copy; the
# services that mount them must be stopped.
volumes() {
  target=$1
  # Inside the user namespace: the containers' users own what is below _data.
  podman unshare find "$target" -type d -path '*/volumes/*/_data' -prune | while read -r data; do
    volume=${data%/_data}
    volume=${volume##*/}
    # </dev/null: the loop reads its list from stdin, which podman must not consume.
    podman volume exists "$volume" </dev/null || podman volume create "$volume" </dev/null >/dev/null
    path=$(volume_path "$volume" </dev/null)
    podman unshare find "$path" -mindepth 1 -delete </dev/null
    podman unshare cp -a "$data/." "$path/" </dev/null
    log "restored volume $volume"
  done
  podman unshare rm -rf "$target"
}

case ${1:-} in
  backup) backup ;;
  check) check ;;
  status) status ;;
  fetch) fetch "${2:?snapshot}" "${3:?directory}" ;;
  volumes) volumes "${2:?directory}" ;;
  restic)
    # Any restic command against the repository, e.g. `restic snapshots`.
    shift
    need_repository
    run_restic "$@"
    ;;
  *) fail "usage: senex-offsite.sh backup|check|status|fetch SNAPSHOT DIR|volumes DIR|restic ARGS..." ;;
esac
