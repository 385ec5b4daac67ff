#!/bin/sh
# Gives the database role the password its Podman secret holds. The migrate one-shot runs this
# before it starts, so the role has the stored password before the migrations and the app
# services (ordered after them) sign in with it: a rotated password takes effect with no window
# in which the app and the database disagree. The value goes from the secret store to psql in
# the database container through the environment (never a command line), and psql quotes it.
# Usage: senex-db-password.sh SECRET CONTAINER USER DATABASE
set -eu
secret=$1 container=$2 user=$3 database=$4

SENEX_DB_PASSWORD=$(podman secret inspect --showsecret --format '{{.SecretData}}' "$secret")
export SENEX_DB_PASSWORD

# The database may still be starting (Podman before 5.0 has no Notify=healthy): try for 60 s.
tries=0
until podman exec --interactive --env SENEX_DB_PASSWORD "$container" \
  psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 --username "$user" --dbname "$database" <<'SQL'
\getenv password SENEX_DB_PASSWORD
SET log_statement = 'none';
SET log_min_error_statement = 'panic';
ALTER ROLE CURRENT_USER PASSWORD :'password';
SQL
do
  tries=$((tries + 1))
  if [ "$tries" -ge 30 ]; then
    echo "senex-db-password: could not set the password of $user in $container" >&2
    exit 1
  fi
  sleep 2
done
