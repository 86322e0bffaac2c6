#!/usr/bin/env bash
#
# Entrypoint of the local stand-in for the `postgres:15` image (see deploy/standins/build). It
# keeps the part of the official image's contract that docker-compose.yml relies on:
#   * PGDATA (default /var/lib/postgresql/data) is initialised on the first start, when empty,
#     with the superuser POSTGRES_USER (default postgres) and the password POSTGRES_PASSWORD
#     (required, unless POSTGRES_HOST_AUTH_METHOD=trust), and the database POSTGRES_DB (default:
#     the user's name) created when it is not `postgres`;
#   * then every file of /docker-entrypoint-initdb.d/, in name order, against a temporary server
#     that listens on the Unix socket only: `*.sh` run (executable) or sourced, `*.sql` fed to
#     psql; a failure stops the container before any client can connect over TCP;
#   * every later start skips all of that and starts the server on the existing data;
#   * connections over TCP from anywhere need the password (scram-sha-256);
#   * the server runs as the user `postgres` and is the container's main process, so that
#     `docker stop` (SIGINT, see the Dockerfile) shuts it down cleanly.
# Arguments: `postgres [OPTIONS]` (the default command) starts the server; anything else is run.
set -Eeuo pipefail

PGDATA="${PGDATA:-/var/lib/postgresql/data}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
export PGDATA POSTGRES_USER POSTGRES_DB

note() { printf '%s [entrypoint] %s\n' "$(date -u +'%Y-%m-%d %H:%M:%S UTC')" "$*" >&2; }

# As root: own the data and socket folders, then start again as `postgres`.
if [[ "${1:-}" == postgres && "$(id -u)" == 0 ]]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown -R postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi

if [[ "${1:-}" != postgres ]]; then
    exec "$@"
fi

# psql against the temporary server: the socket, the superuser, errors stop the script.
init_psql() { psql -X -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password "$@"; }

run_init_files() {
    local file
    for file in /docker-entrypoint-initdb.d/*; do
        [[ -e "$file" ]] || continue
        case "$file" in
        *.sh)
            if [[ -x "$file" ]]; then
                note "running $file"
                "$file"
            else
                note "sourcing $file"
                # shellcheck disable=SC1090
                . "$file"
            fi
            ;;
        *.sql)
            note "running $file"
            init_psql --dbname "$POSTGRES_DB" -f "$file"
            ;;
        *) note "ignoring $file" ;;
        esac
    done
}

initialise() {
    local auth="${POSTGRES_HOST_AUTH_METHOD:-scram-sha-256}" pwfile
    if [[ -z "${POSTGRES_PASSWORD:-}" && "$auth" != trust ]]; then
        note "error: the database is not initialised and POSTGRES_PASSWORD is not set"
        exit 1
    fi
    note "initialising the database in $PGDATA"
    pwfile="$(mktemp)"
    printf '%s\n' "${POSTGRES_PASSWORD:-}" >"$pwfile"
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of options, as in the image.
    initdb --username="$POSTGRES_USER" --pwfile="$pwfile" --auth-local=trust \
        --auth-host="$auth" --encoding=UTF8 --locale=C.UTF-8 ${POSTGRES_INITDB_ARGS:-} >/dev/null
    rm -f "$pwfile"
    printf '\nlisten_addresses = %s\n' "'*'" >>"$PGDATA/postgresql.conf"
    printf 'host all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"

    # The temporary server: the Unix socket only, so that no client sees a half-made database.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
    if [[ "$POSTGRES_DB" != postgres ]]; then
        init_psql --dbname postgres -v db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    run_init_files
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    note "initialised; starting the server"
}

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
    initialise
fi
exec "$@"
