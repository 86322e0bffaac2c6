# shellcheck shell=bash
#
# pg_start / pg_stop / pg_psql / pg_setup_service_db and their helpers:
# a private PostgreSQL server per instance.
#
# Part of scripts/lib.sh, which sources it; do not source it alone.

# ---------------------------------------------------------------------------
# PostgreSQL
# ---------------------------------------------------------------------------

# PostgreSQL refuses to run as root: when we are root, run its programs as
# the `postgres` OS user. A regular user runs them as themselves. The working
# directory is moved to a place that user can read, to avoid warnings.
as_pg_user() {
    local dir="$1"
    shift
    if [[ $EUID -eq 0 ]]; then
        (cd "$dir" && runuser -u postgres -- "$@")
    else
        (cd "$dir" && "$@")
    fi
}

# pg_data_dir NAME: data directory of instance NAME.
pg_data_dir() { printf '%s/postgres\n' "$(instance_dir "$1")"; }

# pg_running NAME: true when the instance's server is running.
pg_running() {
    local data
    data="$(pg_data_dir "$1")"
    [[ -f "$data/PG_VERSION" ]] || return 1
    as_pg_user "$(instance_dir "$1")" "$PG_BIN/pg_ctl" -D "$data" status >/dev/null 2>&1
}

# pg_running_port NAME: port of the running server (from postmaster.pid).
pg_running_port() {
    sed -n '4p' "$(pg_data_dir "$1")/postmaster.pid" 2>/dev/null
}

# pg_wait_ready PORT [TIMEOUT_SECONDS] [LOGFILE]
pg_wait_ready() {
    local port="$1" timeout="${2:-60}" logfile="${3:-}" i
    for ((i = 0; i < timeout * 4; i++)); do
        if "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -t 2; then
            return 0
        fi
        sleep 0.25
    done
    if [[ -n "$logfile" ]]; then
        show_log_tail "$logfile"
    fi
    die "PostgreSQL on 127.0.0.1:$port is not ready after ${timeout}s"
}

# pg_start NAME PORT: start (creating it if needed) the PostgreSQL server of
# instance NAME, listening on 127.0.0.1:PORT. Idempotent. PG_SETTINGS, if set,
# holds more postgresql.conf lines (e.g. "track_commit_timestamp = on").
pg_start() {
    local name="$1" port="$2"
    [[ "$port" =~ ^[0-9]+$ ]] || die "pg_start: invalid port '$port'"
    detect_pg_bin || die "PostgreSQL is not installed (run ensure_postgres_installed)"

    local inst data sockdir logfile
    inst="$(instance_dir "$name")"
    data="$inst/postgres"
    sockdir="$inst/run"
    logfile="$inst/logs/postgres.log"

    # The postgres user must be able to reach the instance folder.
    if [[ $EUID -eq 0 ]] && ! runuser -u postgres -- test -x "$inst"; then
        die "user 'postgres' cannot access $inst; make its parent directories traversable (chmod o+x)"
    fi

    if pg_running "$name"; then
        local running_port
        running_port="$(pg_running_port "$name")"
        if [[ -n "$running_port" && "$running_port" != "$port" ]]; then
            die "PostgreSQL '$name' is already running on port $running_port, not $port; stop it first"
        fi
        log "PostgreSQL '$name' already running on 127.0.0.1:$port"
        pg_wait_ready "$port" 60 "$logfile"
        return 0
    fi

    if port_in_use "$port"; then
        die "port $port is already used by another program; choose another with PG_PORT"
    fi

    # Folders and log file owned by the user running the server.
    mkdir -p "$sockdir"
    touch "$logfile"
    if [[ $EUID -eq 0 ]]; then
        chown postgres: "$sockdir" "$logfile"
    fi

    # Create the cluster on first use. A leftover from an interrupted initdb
    # (folder without PG_VERSION) is discarded.
    if [[ ! -f "$data/PG_VERSION" ]]; then
        rm -rf "$data"
        mkdir -p "$data"
        chmod 700 "$data"
        if [[ $EUID -eq 0 ]]; then
            chown postgres: "$data"
        fi
        local locale_opt=(--locale=C.UTF-8)
        if ! locale -a 2>/dev/null | grep -qiE '^c\.utf-?8$'; then
            warn "locale C.UTF-8 is not available; initialising with --no-locale"
            locale_opt=(--no-locale)
        fi
        log "initialising PostgreSQL cluster '$name'"
        # --auth=trust: no password check for local connections (a dev/test
        # box only listening on 127.0.0.1).
        if ! as_pg_user "$inst" "$PG_BIN/initdb" -D "$data" -U postgres --auth=trust \
            -E UTF8 "${locale_opt[@]}" >>"$logfile" 2>&1; then
            show_log_tail "$logfile"
            rm -rf "$data"
            die "initdb failed for PostgreSQL '$name'"
        fi
    fi

    # Settings for a dev/test box, rewritten at every start so that they stay
    # in sync with this script. They are kept in their own file, included at
    # the end of postgresql.conf (so they win over the defaults).
    local conf="$data/local.conf"
    cat >"$conf" <<EOF
# Written by scripts/lib/postgres.sh (pg_start) at every start: do not edit.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
max_connections = 300
shared_buffers = 256MB
# Durability is part of what is tested: keep fsync on.
fsync = on
synchronous_commit = on
full_page_writes = on
${PG_SETTINGS:-}
EOF
    if [[ $EUID -eq 0 ]]; then
        chown postgres: "$conf"
    fi
    if ! grep -qx "include_if_exists = 'local.conf'" "$data/postgresql.conf"; then
        printf "\ninclude_if_exists = 'local.conf'\n" >>"$data/postgresql.conf"
    fi

    log "starting PostgreSQL '$name' on 127.0.0.1:$port"
    if ! as_pg_user "$inst" "$PG_BIN/pg_ctl" -D "$data" -l "$logfile" -w -t 60 start >/dev/null; then
        show_log_tail "$logfile"
        die "PostgreSQL '$name' failed to start"
    fi
    pg_wait_ready "$port" 60 "$logfile"
}

# pg_stop NAME: stop the PostgreSQL server of instance NAME if it is running.
pg_stop() {
    local name="$1"
    detect_pg_bin || return 0 # not installed: nothing can be running
    if ! pg_running "$name"; then
        return 0
    fi
    log "stopping PostgreSQL '$name'"
    as_pg_user "$(instance_dir "$name")" "$PG_BIN/pg_ctl" -D "$(pg_data_dir "$name")" \
        -m fast -w -t 60 stop >/dev/null
}

# pg_psql PORT DB ARGS...: run psql as superuser `postgres` over TCP.
pg_psql() {
    local port="$1" db="$2"
    shift 2
    "$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

# pg_setup_service_db PORT: create (idempotently) the roles and database used
# by the services:
#   * orders_ingestor: owns database `orders` and runs the migrations;
#   * orders_api:      read-only access to the tables of `orders`.
# The passwords are what the services put in their connection URLs. The
# instance trusts 127.0.0.1 (see initdb --auth=trust), so they are not
# actually checked: fine for a dev box, not for production.
pg_setup_service_db() {
    local port="$1"
    detect_pg_bin || die "PostgreSQL is not installed"

    log "setting up roles and database 'orders' on 127.0.0.1:$port"
    pg_psql "$port" postgres <<'SQL'
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orders_ingestor') THEN
        CREATE ROLE orders_ingestor LOGIN PASSWORD 'ingestor';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orders_api') THEN
        CREATE ROLE orders_api LOGIN PASSWORD 'api';
    END IF;
END
$$;
-- Keep the attributes right even if the roles pre-existed.
ALTER ROLE orders_ingestor LOGIN PASSWORD 'ingestor';
ALTER ROLE orders_api LOGIN PASSWORD 'api';

-- CREATE DATABASE cannot run inside a DO block: use \gexec.
SELECT 'CREATE DATABASE orders OWNER orders_ingestor ENCODING ''UTF8'' TEMPLATE template0'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'orders')
\gexec
ALTER DATABASE orders OWNER TO orders_ingestor;
SQL

    pg_psql "$port" orders <<'SQL'
GRANT CONNECT ON DATABASE orders TO orders_api;
GRANT USAGE ON SCHEMA public TO orders_api;
-- Tables the ingestor creates later (migrations) become readable by the api.
ALTER DEFAULT PRIVILEGES FOR ROLE orders_ingestor IN SCHEMA public
    GRANT SELECT ON TABLES TO orders_api;
-- Tables that already exist.
GRANT SELECT ON ALL TABLES IN SCHEMA public TO orders_api;
SQL
}
