# shellcheck shell=bash
#
# instance_start_clean, proc_start / proc_alive / proc_fail /
# proc_wait_ready, wait_migrated: the services of an instance, from BIN_DIR.
#
# Part of scripts/lib.sh, which sources it; do not source it alone.

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
    local pid=$!
    echo "$pid" >"$inst/$name.pid"
    wait_exec "$pid" "$BIN_DIR/$program"
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
