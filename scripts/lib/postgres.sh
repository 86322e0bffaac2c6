# shellcheck shell=bash
#
# pg_start / pg_stop / pg_psql / pg_setup_service_db and their helpers:
# a private PostgreSQL server per instance; pg_start_standby / pg_standby_state:
# an instance that is a hot standby of another's server.
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
# A standby (pg_start_standby) streams from this server. These are the
# defaults of PostgreSQL 15, written down because the standby relies on them;
# wal_keep_size keeps enough WAL for a standby stopped for a while to catch
# up without a replication slot, which would keep WAL forever for a standby
# that is gone. pg_hba.conf (initdb's) trusts replication from 127.0.0.1.
wal_level = replica
max_wal_senders = 10
wal_keep_size = 256MB
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

# pg_system_id NAME: the system identifier of the data folder of instance NAME
# (the same on a primary and on the standbys copied from it); empty if none.
pg_system_id() {
    local data
    data="$(pg_data_dir "$1")"
    [[ -f "$data/PG_VERSION" ]] || return 0
    as_pg_user "$(instance_dir "$1")" "$PG_BIN/pg_controldata" -D "$data" 2>/dev/null |
        sed -n 's/^Database system identifier: *//p'
}

# pg_start_standby NAME PORT PRIMARY PRIMARY_PORT: start (creating it if
# needed) instance NAME as a hot standby of the running server of instance
# PRIMARY, on 127.0.0.1:PRIMARY_PORT, listening on 127.0.0.1:PORT. Its data is
# a copy made by `pg_basebackup -R`, which writes standby.signal and the
# primary_conninfo it streams WAL with; the copy is made again when PRIMARY
# was created anew since (its system identifier differs). Idempotent.
pg_start_standby() {
    local name="$1" port="$2" primary="$3" primary_port="$4"
    detect_pg_bin || die "PostgreSQL is not installed (run ensure_postgres_installed)"
    local inst data logfile primary_id
    inst="$(instance_dir "$name")"
    data="$inst/postgres"
    logfile="$inst/logs/postgres.log"
    primary_id="$(pg_system_id "$primary")"
    [[ -n "$primary_id" ]] || die "PostgreSQL '$primary' has no data: start it first"

    if [[ -f "$data/PG_VERSION" && "$(pg_system_id "$name")" != "$primary_id" ]]; then
        log "'$name' is no copy of PostgreSQL '$primary' (created anew since?): copying it again"
        pg_stop "$name"
        rm -rf "$data"
    fi
    if [[ ! -f "$data/PG_VERSION" ]]; then
        rm -rf "$data"
        mkdir -p "$data"
        chmod 700 "$data"
        touch "$logfile"
        if [[ $EUID -eq 0 ]]; then
            chown postgres: "$data" "$logfile"
        fi
        log "copying PostgreSQL '$primary' (127.0.0.1:$primary_port) into standby '$name'"
        # -X stream: the WAL written during the copy comes with it; -c fast:
        # an immediate checkpoint rather than waiting for the next one.
        if ! as_pg_user "$inst" "$PG_BIN/pg_basebackup" \
            -d "host=127.0.0.1 port=$primary_port user=postgres application_name=$name" \
            -D "$data" -R -X stream -c fast >>"$logfile" 2>&1; then
            show_log_tail "$logfile"
            rm -rf "$data"
            die "pg_basebackup from PostgreSQL '$primary' failed"
        fi
    fi
    [[ -f "$data/standby.signal" ]] ||
        die "PostgreSQL '$name' is not a standby (no standby.signal); remove $data to copy the primary again"
    PG_SETTINGS="${PG_SETTINGS:-}"$'\n'"hot_standby = on" pg_start "$name" "$port"
}

# pg_standby_state PORT PRIMARY_PORT: one line on the standby at PORT: whether
# it is in recovery, and how far its replay is behind the primary's current
# WAL position (in bytes), or behind what it received when the primary does
# not answer.
pg_standby_state() {
    local port="$1" primary_port="$2" lsn
    lsn="$(pg_psql "$primary_port" postgres -At -c 'SELECT pg_current_wal_lsn()' 2>/dev/null)" ||
        lsn=""
    pg_psql "$port" postgres -At -v lsn="$lsn" 2>/dev/null <<'SQL' || printf 'not answering\n'
SELECT coalesce(CASE
    WHEN NOT pg_is_in_recovery() THEN 'NOT in recovery: not a standby any more'
    ELSE 'in recovery, replay '
        || CASE WHEN :'lsn' = ''
            THEN pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())
                 || ' bytes behind what it received (primary not answering)'
            ELSE greatest(0, pg_wal_lsn_diff(NULLIF(:'lsn', '')::pg_lsn, pg_last_wal_replay_lsn()))
                 || ' bytes behind the primary'
           END
        || CASE WHEN pg_is_wal_replay_paused() THEN ' (paused)' ELSE '' END
END, 'in recovery, no WAL received yet')
SQL
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
