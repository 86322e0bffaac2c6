# shellcheck shell=bash
#
# Shared helpers for the project's scripts. Source it, do not execute it:
#
#     # shellcheck source=scripts/lib.sh
#     source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It provides:
#   * ROOT                     absolute path of the repository root
#   * log / warn / die         logging helpers (everything goes to stderr)
#   * ensure_*_installed       install Postgres, NATS Streaming, vegeta, curl,
#                              nginx, Chromium, node when they are missing
#                              (fast no-op otherwise)
#   * ensure_python_venv       Python tools, pinned, in a venv under .local/tools/
#   * npm_install_locked       a folder's node packages, as its package-lock.json pins them
#   * ensure_cargo / build_debug_bins
#                              the debug binaries of the workspace, in BIN_DIR
#   * pg_start / pg_stop       a private PostgreSQL server per "instance"
#   * stan_start / stan_stop   a private NATS Streaming server per "instance"
#   * pg_setup_service_db      roles and database used by the services
#   * nginx_write_config / nginx_start
#                              a local nginx balancing over several api processes
#   * api_stop_all             stop that nginx and every api process of an instance
#   * stop_pidfile             stop a background process recorded in a pid file
#   * instance_start_clean     a fresh instance, stopped on exit and removed
#                              after a success
#   * proc_start / proc_wait_ready / wait_migrated
#                              the services of an instance, from BIN_DIR
#
# An "instance" (e.g. `dev`, `test`) is a folder `$ROOT/.local/NAME/` holding
# the data, sockets, logs and pid files of one set of servers, so that several
# sets can run side by side on different ports.

# Guard against double sourcing.
if [[ -n "${__ORDERS_LIB_SH:-}" ]]; then
    return 0
fi
__ORDERS_LIB_SH=1

# ---------------------------------------------------------------------------
# Paths and versions
# ---------------------------------------------------------------------------

# Repository root, derived from this file's own location (scripts/lib.sh).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export ROOT

# The debug binaries of the workspace (`cargo build --bins`).
BIN_DIR="$ROOT/target/debug"

# Pinned versions of the Go tools we build from source.
STAN_MODULE="github.com/nats-io/nats-streaming-server@v0.25.6"
VEGETA_MODULE="github.com/tsenart/vegeta/v12@v12.13.0"

# NATS Streaming cluster id shared by the servers and their clients.
STAN_CLUSTER_ID="${STAN_CLUSTER_ID:-test-cluster}"

# ---------------------------------------------------------------------------
# Logging
# ---------------------------------------------------------------------------

__log_prefix="$(basename "${0:-lib.sh}")"

log() { printf '[%s] %s\n' "$__log_prefix" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "$__log_prefix" "$*" >&2; }
die() {
    printf '[%s] ERROR: %s\n' "$__log_prefix" "$*" >&2
    exit 1
}

# Print a prominent header (used between the steps of longer scripts).
header() { printf '\n==> %s\n' "$*" >&2; }

# show_log_tail FILE [LINES]: dump the end of a log file, to explain a failure.
show_log_tail() {
    local file="$1" lines="${2:-40}"
    if [[ -s "$file" ]]; then
        printf -- '----- last %s lines of %s -----\n' "$lines" "$file" >&2
        tail -n "$lines" "$file" >&2
        printf -- '----- end of %s -----\n' "$file" >&2
    else
        printf -- '(log file %s is empty or missing)\n' "$file" >&2
    fi
}

# ---------------------------------------------------------------------------
# Small utilities
# ---------------------------------------------------------------------------

# Run a command as root: directly when we already are root, via sudo otherwise.
as_root() {
    if [[ $EUID -eq 0 ]]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        die "need root privileges to run: $* (and sudo is not available)"
    fi
}

# apt_install PKG...: install Debian packages, refreshing the package index
# only when the first attempt fails (typically on a fresh machine).
apt_install() {
    log "installing with apt: $*"
    if ! as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"; then
        log "apt-get install failed; refreshing the package index and retrying"
        as_root apt-get update -q
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$@"
    fi
}

# pid_running PID: true when PID is a live process (zombies count as dead:
# a container's init may never reap them).
pid_running() {
    local pid="$1" state
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null || true)"
    [[ "$state" != "Z" ]]
}

# pidfile_pid PIDFILE [PATTERN]: print the pid recorded in PIDFILE when that
# process is alive (and, if PATTERN is given, its command line contains
# PATTERN, which protects against pid reuse). Fails otherwise.
pidfile_pid() {
    local pidfile="$1" pattern="${2:-}" pid cmdline
    [[ -f "$pidfile" ]] || return 1
    pid="$(tr -dc '0-9' <"$pidfile")"
    pid_running "$pid" || return 1
    if [[ -n "$pattern" ]]; then
        cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)"
        [[ "$cmdline" == *"$pattern"* ]] || return 1
    fi
    printf '%s\n' "$pid"
}

# stop_pidfile LABEL PIDFILE [PATTERN] [TIMEOUT_SECONDS] [SIGNAL]: send SIGNAL
# (default TERM) to the process recorded in PIDFILE, wait up to TIMEOUT seconds
# for it to exit, SIGKILL it if it is still there, and remove the pid file.
# No-op if it is not running.
stop_pidfile() {
    local label="$1" pidfile="$2" pattern="${3:-}" timeout="${4:-15}" signal="${5:-TERM}" pid i
    if ! pid="$(pidfile_pid "$pidfile" "$pattern")"; then
        rm -f "$pidfile"
        return 0
    fi
    log "stopping $label (pid $pid)"
    kill -"$signal" "$pid" 2>/dev/null || true
    for ((i = 0; i < timeout * 10; i++)); do
        pid_running "$pid" || break
        sleep 0.1
    done
    if pid_running "$pid"; then
        warn "$label (pid $pid) did not exit within ${timeout}s; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            pid_running "$pid" || break
            sleep 0.1
        done
    fi
    rm -f "$pidfile"
}

# port_in_use PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
    timeout 2 bash -c ": </dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# instance_dir NAME: folder holding everything of instance NAME (created).
instance_dir() {
    local name="$1"
    [[ "$name" =~ ^[A-Za-z0-9_-]+$ ]] || die "invalid instance name: '$name'"
    local dir="$ROOT/.local/$name"
    mkdir -p "$dir/logs"
    printf '%s\n' "$dir"
}

# ---------------------------------------------------------------------------
# Installation of the tools (each is a fast no-op when already present)
# ---------------------------------------------------------------------------

ensure_curl_installed() {
    command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
}

# detect_pg_bin: set PG_BIN to the newest /usr/lib/postgresql/*/bin, unless
# PG_BIN is already set to a directory holding pg_ctl. Fails when not found.
detect_pg_bin() {
    if [[ -n "${PG_BIN:-}" && -x "${PG_BIN}/pg_ctl" ]]; then
        export PG_BIN
        return 0
    fi
    local candidate
    candidate="$(
        for d in /usr/lib/postgresql/*/bin; do
            if [[ -x "$d/pg_ctl" ]]; then
                printf '%s\n' "$d"
            fi
        done | sort -V | tail -n 1
    )"
    [[ -n "$candidate" ]] || return 1
    PG_BIN="$candidate"
    export PG_BIN
}

# ensure_postgres_installed: make sure the PostgreSQL server binaries exist
# (Debian's `postgresql` package) and export PG_BIN.
ensure_postgres_installed() {
    if ! detect_pg_bin; then
        # Note: on Debian the package also creates (and may start) a system
        # cluster on port 5432; it is unrelated to ours and left alone.
        apt_install postgresql
        detect_pg_bin || die "PostgreSQL installed, but no /usr/lib/postgresql/*/bin/pg_ctl found"
    fi
    # `runuser` (util-linux) is needed to run the server as user postgres.
    if [[ $EUID -eq 0 ]] && ! command -v runuser >/dev/null 2>&1; then
        apt_install util-linux
    fi
}

# find_go: print the path of the Go toolchain.
find_go() {
    if command -v go >/dev/null 2>&1; then
        command -v go
    elif [[ -x /usr/local/go/bin/go ]]; then
        printf '%s\n' /usr/local/go/bin/go
    else
        return 1
    fi
}

# go_bin_dir: directory where `go install` puts binaries.
go_bin_dir() {
    local go gobin
    go="$(find_go)" || return 1
    gobin="$("$go" env GOBIN)"
    if [[ -n "$gobin" ]]; then
        printf '%s\n' "$gobin"
    else
        printf '%s/bin\n' "$("$go" env GOPATH)"
    fi
}

# find_go_tool NAME: print the path of a binary installed by `go install` (or
# found on PATH). Fails when it is nowhere to be found.
find_go_tool() {
    local name="$1" dir
    if command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
        return 0
    fi
    dir="$(go_bin_dir 2>/dev/null)" || return 1
    [[ -x "$dir/$name" ]] || return 1
    printf '%s\n' "$dir/$name"
}

# go_install MODULE@VERSION: build and install a Go program from source. When
# the checksum database (sum.golang.org) cannot be reached, retry once without
# it.
go_install() {
    local module="$1" go out status=0
    go="$(find_go)" || die "Go is needed to build $module but was not found (expected 'go' on PATH or /usr/local/go/bin/go)"
    log "building $module with go install (this can take a minute)"
    out="$(mktemp)"
    # Build from a neutral directory so no surrounding go.mod is picked up.
    (cd / && "$go" install "$module") 2>&1 | tee "$out" >&2 || status=$?
    if [[ $status -ne 0 ]] && grep -qiE 'sum\.golang\.org|verifying .*(module|go\.mod)|GOSUMDB' "$out"; then
        warn "checksum database unreachable; retrying once with GOSUMDB=off"
        status=0
        (cd / && GOSUMDB=off "$go" install "$module") >&2 || status=$?
    fi
    rm -f "$out"
    [[ $status -eq 0 ]] || die "go install $module failed"
}

# ensure_stan_installed: make sure nats-streaming-server exists; export STAN_BIN.
ensure_stan_installed() {
    if ! STAN_BIN="$(find_go_tool nats-streaming-server)"; then
        go_install "$STAN_MODULE"
        STAN_BIN="$(find_go_tool nats-streaming-server)" ||
            die "nats-streaming-server was built but cannot be found in $(go_bin_dir)"
    fi
    export STAN_BIN
}

# ensure_vegeta_installed: make sure vegeta (HTTP load tester) exists; export VEGETA_BIN.
ensure_vegeta_installed() {
    if ! VEGETA_BIN="$(find_go_tool vegeta)"; then
        go_install "$VEGETA_MODULE"
        VEGETA_BIN="$(find_go_tool vegeta)" ||
            die "vegeta was built but cannot be found in $(go_bin_dir)"
    fi
    export VEGETA_BIN
}

# ensure_chromium_installed: make sure Debian's chromium exists; export
# CHROMIUM_BIN. Tests drive this browser; none is ever downloaded.
ensure_chromium_installed() {
    CHROMIUM_BIN=/usr/bin/chromium
    if [[ ! -x "$CHROMIUM_BIN" ]]; then
        apt_install chromium
        [[ -x "$CHROMIUM_BIN" ]] || die "chromium was installed, but $CHROMIUM_BIN is missing"
    fi
    export CHROMIUM_BIN
}

# ensure_node_installed: make sure node (20 or newer) and npm exist.
ensure_node_installed() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm
    fi
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    if [[ ! "$major" =~ ^[0-9]+$ ]] || ((major < 20)); then
        die "node $(node --version) is too old: version 20 or newer is needed"
    fi
}

# npm_install_locked DIR: install the node packages of DIR exactly as its
# package-lock.json pins them (`npm ci`, with no install scripts, so nothing
# but the registry's packages is fetched), unless they already are.
npm_install_locked() {
    local dir="$1" stamp="$1/node_modules/.installed-lock.json"
    [[ -f "$dir/package-lock.json" ]] || die "no package-lock.json in $dir"
    if [[ -f "$stamp" ]] && cmp -s "$stamp" "$dir/package-lock.json"; then
        return 0
    fi
    log "installing the node packages of ${dir#"$ROOT"/} (npm ci)"
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2 ||
        die "npm ci failed in ${dir#"$ROOT"/}"
    cp "$dir/package-lock.json" "$stamp"
}

# ensure_python_venv VENV REQUIREMENT...: a virtual environment at VENV
# holding the pinned REQUIREMENTs (pip specifiers such as name==1.2.3),
# recreated only when the list changes.
ensure_python_venv() {
    local venv="$1" stamp="$1/.installed"
    shift
    if [[ -x "$venv/bin/python" && "$(cat "$stamp" 2>/dev/null)" == "$*" ]]; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || apt_install python3
    log "installing $* into ${venv#"$ROOT"/}"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        rm -rf "$venv"
        apt_install python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check "$@"
    printf '%s\n' "$*" >"$stamp"
}

# ensure_cargo: make a rustup installation usable even when ~/.cargo/bin is
# not on PATH.
ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
        PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs) first"
}

# build_debug_bins PROGRAM...: build the debug binaries of the workspace
# (`cargo build --bins`, a no-op after `cargo test`) and check that each
# PROGRAM is in BIN_DIR.
build_debug_bins() {
    ensure_cargo
    header "Building the debug binaries (cargo build --bins)"
    (cd "$ROOT" && cargo build --bins)
    local bin
    for bin in "$@"; do
        [[ -x "$BIN_DIR/$bin" ]] || die "cargo build did not produce $BIN_DIR/$bin"
    done
}

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
# instance NAME, listening on 127.0.0.1:PORT. Idempotent.
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
# Written by scripts/lib.sh (pg_start) at every start: do not edit.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$sockdir'
max_connections = 300
shared_buffers = 256MB
# Durability is part of what is tested: keep fsync on.
fsync = on
synchronous_commit = on
full_page_writes = on
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

# ---------------------------------------------------------------------------
# NATS Streaming (STAN)
# ---------------------------------------------------------------------------

# stan_pid NAME: pid of the instance's running server, if any.
stan_pid() {
    pidfile_pid "$(instance_dir "$1")/stan.pid" nats-streaming-server
}

# stan_wait_ready NAME MONITOR_PORT [TIMEOUT_SECONDS]
stan_wait_ready() {
    local name="$1" mport="$2" timeout="${3:-30}" inst i
    inst="$(instance_dir "$name")"
    local url="http://127.0.0.1:$mport/streaming/serverz"
    for ((i = 0; i < timeout * 4; i++)); do
        if curl -sf --max-time 2 -o /dev/null "$url"; then
            return 0
        fi
        if ! stan_pid "$name" >/dev/null; then
            show_log_tail "$inst/logs/stan.log"
            die "NATS Streaming '$name' exited during start-up"
        fi
        sleep 0.25
    done
    show_log_tail "$inst/logs/stan.log"
    die "NATS Streaming '$name' does not answer on $url after ${timeout}s"
}

# stan_start NAME PORT MONITOR_PORT: start the NATS Streaming server of
# instance NAME (file store, persistent across restarts). Idempotent.
stan_start() {
    local name="$1" port="$2" mport="$3"
    [[ "$port" =~ ^[0-9]+$ && "$mport" =~ ^[0-9]+$ ]] ||
        die "stan_start: invalid ports '$port' '$mport'"
    [[ -n "${STAN_BIN:-}" ]] || STAN_BIN="$(find_go_tool nats-streaming-server)" ||
        die "nats-streaming-server is not installed (run ensure_stan_installed)"
    ensure_curl_installed

    local inst pidfile logfile pid
    inst="$(instance_dir "$name")"
    pidfile="$inst/stan.pid"
    logfile="$inst/logs/stan.log"

    if pid="$(stan_pid "$name")"; then
        log "NATS Streaming '$name' already running (pid $pid)"
        stan_wait_ready "$name" "$mport" 30
        return 0
    fi
    rm -f "$pidfile"

    local p
    for p in "$port" "$mport"; do
        if port_in_use "$p"; then
            die "port $p is already used by another program; choose others with STAN_PORT / STAN_MONITOR_PORT"
        fi
    done

    mkdir -p "$inst/stan"
    log "starting NATS Streaming '$name' on 127.0.0.1:$port (monitoring $mport)"
    # setsid detaches the server from the terminal, so it survives the shell
    # that started it. The server rewrites the pid file itself (-P).
    setsid "$STAN_BIN" \
        --cluster_id "$STAN_CLUSTER_ID" \
        --store file --dir "$inst/stan" \
        -a 127.0.0.1 -p "$port" -m "$mport" \
        --max_channels 0 --max_subs 0 --max_msgs 0 --max_bytes 0 --max_age 0s \
        --hb_interval 2s --hb_timeout 2s --hb_fail_count 3 \
        -P "$pidfile" \
        </dev/null >>"$logfile" 2>&1 &
    echo "$!" >"$pidfile"

    stan_wait_ready "$name" "$mport" 30
}

# stan_stop NAME: stop the NATS Streaming server of instance NAME if running.
# SIGINT: the server's clean shutdown. It does not always act on SIGTERM, and was
# then killed after the timeout.
stan_stop() {
    local name="$1"
    stop_pidfile "NATS Streaming '$name'" "$(instance_dir "$name")/stan.pid" \
        nats-streaming-server 20 INT
}

# ---------------------------------------------------------------------------
# nginx: the load balancer in front of several api processes
# ---------------------------------------------------------------------------

# ensure_nginx_installed: make sure Debian's nginx exists; export NGINX_BIN.
# Note: on a machine with systemd the package also starts a system nginx on
# port 80; it is unrelated to ours and left alone.
ensure_nginx_installed() {
    if ! NGINX_BIN="$(command -v nginx || command -v /usr/sbin/nginx)"; then
        apt_install nginx
        NGINX_BIN="$(command -v nginx || command -v /usr/sbin/nginx)" ||
            die "nginx was installed, but no nginx binary was found"
    fi
    export NGINX_BIN
}

# nginx_write_config CONF LISTEN_ADDR LOG_DIR UPSTREAM_PORT...: write the
# configuration of a local nginx that listens on LISTEN_ADDR (host:port) and
# balances round-robin over api processes on 127.0.0.1:UPSTREAM_PORT..., the
# same kind of balancer as the `lb` service of docker-compose.yml, with the
# same proxy settings (deploy/nginx/proxy.conf). Its access log records which
# api process answered each request (upstream=127.0.0.1:PORT) in
# LOG_DIR/nginx-access.log; errors go to its standard error (see nginx_start).
# Everything it writes stays in CONF's folder and LOG_DIR: it runs without root.
nginx_write_config() {
    local conf="$1" listen="$2" log_dir="$3" dir port
    shift 3
    [[ $# -ge 1 ]] || die "nginx_write_config: no upstream port"
    dir="$(dirname "$conf")"
    mkdir -p "$dir/tmp" "$log_dir"
    {
        printf '# Written by scripts/lib.sh (nginx_write_config) at every start: do not edit.\n'
        printf 'daemon off;\nworker_processes 1;\n'
        printf 'pid %s/nginx.pid;\n' "$dir"
        printf 'error_log stderr warn;\n'
        printf 'events {\n    worker_connections 1024;\n}\n'
        printf 'http {\n'
        local t
        for t in client_body proxy fastcgi uwsgi scgi; do
            printf '    %s_temp_path %s/tmp/%s;\n' "$t" "$dir" "$t"
        done
        cat <<'NGINX'
    log_format orders_lb '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
                         'upstream=$upstream_addr upstream_status=$upstream_status '
                         'request_time=$request_time';
    upstream api {
NGINX
        for port in "$@"; do
            printf '        server 127.0.0.1:%s;\n' "$port"
        done
        printf '    }\n'
        printf '    server {\n'
        printf '        listen %s;\n' "$listen"
        printf '        access_log %s/nginx-access.log orders_lb;\n' "$log_dir"
        printf '        location / {\n'
        printf '            proxy_pass http://api;\n'
        printf '            include %s/deploy/nginx/proxy.conf;\n' "$ROOT"
        printf '        }\n    }\n}\n'
    } >"$conf"
}

# nginx_start CONF PIDFILE LOGFILE: check CONF, then run nginx in the
# foreground of a background process (daemon off), detached from the terminal,
# its pid in PIDFILE and its errors in LOGFILE. The caller waits for it to
# answer.
nginx_start() {
    local conf="$1" pidfile="$2" logfile="$3"
    [[ -n "${NGINX_BIN:-}" ]] || die "nginx is not installed (run ensure_nginx_installed)"
    if ! "$NGINX_BIN" -t -q -c "$conf" >>"$logfile" 2>&1; then
        show_log_tail "$logfile"
        die "nginx rejects its configuration $conf"
    fi
    log "starting nginx (config: ${conf#"$ROOT"/})"
    setsid "$NGINX_BIN" -c "$conf" </dev/null >>"$logfile" 2>&1 &
    echo "$!" >"$pidfile"
}

# api_stop_all INST_DIR BIN_DIR: stop the nginx of INST_DIR (nginx.pid) and
# every api process recorded there: api.pid (a single api) and api-N.pid (the
# replicas behind nginx).
api_stop_all() {
    local inst="$1" bin_dir="$2" pidfile
    stop_pidfile nginx "$inst/nginx.pid" "$inst/nginx/nginx.conf" 10
    for pidfile in "$inst/api.pid" "$inst"/api-*.pid; do
        [[ -e "$pidfile" ]] || continue
        stop_pidfile "$(basename "$pidfile" .pid)" "$pidfile" "$bin_dir/api" 15
    done
}

# ---------------------------------------------------------------------------
# The services of an instance, run from BIN_DIR
# ---------------------------------------------------------------------------

# instance_start_clean NAME STOP_FUNCTION: stop what an interrupted run left
# of instance NAME (STOP_FUNCTION stops every server of the instance), wipe
# its folder, and set what happens on exit: STOP_FUNCTION runs, then the
# folder is removed after a success and kept, for its logs, after a failure.
instance_start_clean() {
    __instance_name="$1"
    __instance_stop="$2"
    header "Starting a clean instance '$__instance_name'"
    "$__instance_stop"
    rm -rf "$ROOT/.local/$__instance_name"
    instance_dir "$__instance_name" >/dev/null
    trap __instance_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

# The EXIT trap of instance_start_clean.
__instance_cleanup() {
    local status=$?
    header "Stopping the instance '$__instance_name'"
    "$__instance_stop" || true
    if [[ $status -eq 0 ]]; then
        rm -rf "$ROOT/.local/$__instance_name"
    else
        warn "failed; the logs are kept in .local/$__instance_name/logs/"
    fi
    exit "$status"
}

# proc_start INST_DIR NAME PROGRAM ENV_ASSIGNMENTS...: run BIN_DIR/PROGRAM in
# the background, detached from the terminal, with ENV_ASSIGNMENTS added to
# its environment; its output goes to INST_DIR/logs/NAME.log and its pid to
# INST_DIR/NAME.pid.
proc_start() {
    local inst="$1" name="$2" program="$3"
    shift 3
    env "$@" setsid "$BIN_DIR/$program" </dev/null >>"$inst/logs/$name.log" 2>&1 &
    local pid=$! i
    echo "$pid" >"$inst/$name.pid"
    # Until it has executed the program, the child is a copy of this shell, which proc_alive
    # (it checks the command line) would take for a dead process: give it up to 5s for that.
    for ((i = 0; i < 50; i++)); do
        if [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"$BIN_DIR/$program"* ]] ||
            ! pid_running "$pid"; then
            break
        fi
        sleep 0.1
    done
}

# proc_alive INST_DIR NAME PATTERN: the process recorded in INST_DIR/NAME.pid
# runs, and its command line holds PATTERN.
proc_alive() { pidfile_pid "$1/$2.pid" "$3" >/dev/null; }

# proc_fail INST_DIR NAME MESSAGE: stop the script with the end of NAME's log.
proc_fail() {
    show_log_tail "$1/logs/$2.log"
    die "$3"
}

# proc_wait_ready INST_DIR NAME PATTERN URL [TIMEOUT_SECONDS]: wait for
# URL/readyz to answer 200, failing at once if the process NAME exits.
proc_wait_ready() {
    local inst="$1" name="$2" pattern="$3" url="$4" timeout="${5:-60}" i
    for ((i = 0; i < timeout * 4; i++)); do
        proc_alive "$inst" "$name" "$pattern" || proc_fail "$inst" "$name" "$name exited during start-up"
        if curl -sf --max-time 2 -o /dev/null "$url/readyz"; then
            return 0
        fi
        sleep 0.25
    done
    proc_fail "$inst" "$name" "$name is not ready after ${timeout}s ($url/readyz)"
}

# wait_migrated INST_DIR NAME PG_PORT [TIMEOUT_SECONDS]: wait until the
# ingestor NAME (pid in INST_DIR/NAME.pid) has applied every migration of
# migrations/ to the database `orders` on PG_PORT: the api needs the tables.
wait_migrated() {
    local inst="$1" name="$2" port="$3" timeout="${4:-60}" expected=0 applied f i
    for f in "$ROOT"/migrations/*.sql; do
        if [[ -e "$f" && "$f" != *.down.sql ]]; then
            expected=$((expected + 1))
        fi
    done
    ((expected > 0)) || die "no migrations found in migrations/"
    for ((i = 0; i < timeout * 4; i++)); do
        proc_alive "$inst" "$name" "$BIN_DIR/ingestor" ||
            proc_fail "$inst" "$name" "the ingestor exited during start-up"
        applied="$(pg_psql "$port" orders -At -c \
            'select count(*) from _sqlx_migrations where success' 2>/dev/null || true)"
        if [[ "$applied" =~ ^[0-9]+$ ]] && ((applied >= expected)); then
            return 0
        fi
        sleep 0.25
    done
    proc_fail "$inst" "$name" "the ingestor did not apply the migrations within ${timeout}s"
}
