# shellcheck shell=bash
#
# The faults of loadtest/soak, carried out: run_schedule reads the schedule
# `bench soak schedule` drew (one action a line: index, due time in ms from
# the start, kind, target, signal, hold in ms; the actions of one index start
# together) and, at each due moment, starts the fault's actions, waits until
# each is over and its process is back (ready, or answering), and appends one
# line per action to the faults file: the action, then when it started and when
# the process was back, in ms since the Unix epoch.
#
# The hold (how long a process stays killed, stopped or frozen) is the fault
# itself; every wait for a process to be back is a bounded wait for an event.
#
# Sourced by loadtest/soak, which provides INST, LOG_DIR, PG_PORT,
# PG_SOAK_SETTINGS, STAN_PORT, STAN_ROUTE_PORT, STAN_MONITOR_PORT,
# INGESTOR_METRICS_PORT, API_PORT and the functions start_ingestor N and
# start_api N.

now_ms() { date +%s%3N; }

# sleep_ms MS: the hold of a fault, or the time until the next one is due.
sleep_ms() {
    (($1 > 0)) || return 0
    sleep "$(printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)))"
}

# target_pidfile TARGET: where the pid of ingestor-N, api-N, stan-X or
# postgres is (PostgreSQL's postmaster.pid holds it on its first line).
target_pidfile() {
    case "$1" in
    postgres) echo "$INST/postgres/postmaster.pid" ;;
    *) echo "$INST/$1.pid" ;;
    esac
}

# target_pid TARGET: the pid of the running process TARGET; fails if none.
target_pid() {
    local pid
    pid="$(head -n1 "$(target_pidfile "$1")" 2>/dev/null | tr -dc '0-9')"
    pid_running "$pid" || return 1
    printf '%s\n' "$pid"
}

# wait_until SECONDS WHAT COMMAND...: run COMMAND every 0.1 s until it
# succeeds; fail, saying WHAT was awaited, after SECONDS.
wait_until() {
    local seconds="$1" what="$2" i
    shift 2
    for ((i = 0; i < seconds * 10; i++)); do
        "$@" && return 0
        sleep 0.1
    done
    warn "not within ${seconds}s: $what"
    return 1
}

pid_gone() { ! pid_running "$1"; }

# signal_and_wait TARGET SIGNAL: send SIGNAL to TARGET and wait until it has
# exited.
signal_and_wait() {
    local pid
    pid="$(target_pid "$1")" || {
        warn "$1 does not run"
        return 1
    }
    kill -"$2" "$pid"
    wait_until 60 "$1 (pid $pid) to exit after SIG$2" pid_gone "$pid"
}

http_ok() { curl -sf --max-time 2 -o /dev/null "$1"; }

# A replica's number and its base URL; an ingestor's metrics URL.
target_number() { echo "${1##*-}"; }
api_url() { echo "http://127.0.0.1:$((API_PORT + $1 - 1))"; }
ingestor_metrics_url() { echo "http://127.0.0.1:$((INGESTOR_METRICS_PORT + $1 - 1))"; }

# back TARGET: wait until TARGET serves again: an api ready, an ingestor's
# /healthz answering, a broker node answering as leader or follower.
back() {
    local target="$1" n
    n="$(target_number "$target")"
    case "$target" in
    api-*) wait_until 120 "$target ready" http_ok "$(api_url "$n")/readyz" ;;
    ingestor-*) wait_until 60 "$target answering" http_ok "$(ingestor_metrics_url "$n")/healthz" ;;
    stan-*) wait_until 60 "$target answering as leader or follower" node_has_role "$target" ;;
    postgres) wait_until 60 "PostgreSQL ready" "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" ;;
    esac
}

node_has_role() {
    local k
    for k in "${!STAN_CLUSTER_NODES[@]}"; do
        if [[ "stan-${STAN_CLUSTER_NODES[k]}" == "$1" ]]; then
            [[ "$(stan_node_role "$((STAN_MONITOR_PORT + k))")" =~ ^(Leader|Follower)$ ]]
            return
        fi
    done
    return 1
}

# restart TARGET: start the killed TARGET again and wait until it is back.
restart() {
    local target="$1"
    case "$target" in
    api-*) start_api "$(target_number "$target")" ;;
    ingestor-*) start_ingestor "$(target_number "$target")" ;;
    stan-*) stan_cluster_start "$NAME" "$STAN_PORT" "$STAN_ROUTE_PORT" "$STAN_MONITOR_PORT" >>"$LOG_DIR/faults.log" 2>&1 ;;
    postgres) PG_SETTINGS="$PG_SOAK_SETTINGS" pg_start "$NAME" "$PG_PORT" >>"$LOG_DIR/faults.log" 2>&1 ;;
    esac
    back "$target"
}

# listener_backends N: the pids of the PostgreSQL backends of replica N's
# LISTEN connection: those named orders-api-listener whose client port is one
# of the replica's own connections to PostgreSQL (its sockets, from
# /proc/PID/fd, looked up in /proc/net/tcp).
listener_backends() {
    local pid link inodes=" " ports
    pid="$(target_pid "api-$1")" || return 0
    for link in /proc/"$pid"/fd/*; do
        link="$(readlink "$link" 2>/dev/null)" || continue
        [[ "$link" == socket:* ]] && inodes+="${link//[^0-9]/} "
    done
    ports="$(awk -v inodes="$inodes" -v pg="$(printf '%04X' "$PG_PORT")" '
        NR > 1 { split($2, l, ":"); split($3, r, ":")
                 if (r[2] == pg && index(inodes, " " $10 " ")) print l[2] }' /proc/net/tcp |
        while read -r hex; do printf '%d,' "$((16#$hex))"; done)"
    [[ -n "$ports" ]] || return 0
    pg_psql "$PG_PORT" postgres -At -c "SELECT pid FROM pg_stat_activity
        WHERE application_name = 'orders-api-listener' AND client_port IN (${ports%,})"
}

has_listener() { [[ -n "$(listener_backends "$1")" ]]; }

# listener_reconnects N: replica N's api_orders_listener_reconnects_total.
listener_reconnects() {
    curl -sf --max-time 2 "$(api_url "$1")/metrics" |
        sed -n 's/^api_orders_listener_reconnects_total \([0-9]*\).*/\1/p'
}

reconnected_since() {
    local now
    now="$(listener_reconnects "$1")"
    ((${now:-0} > $2))
}

# terminate_listener N: cut replica N's LISTEN connection from the server side,
# then wait until the replica says it has listened again.
terminate_listener() {
    local n="$1" before backends
    wait_until 60 "api-$n to hold a LISTEN connection" has_listener "$n" || return 1
    before="$(listener_reconnects "$n")"
    backends="$(listener_backends "$n" | paste -sd, -)"
    pg_psql "$PG_PORT" postgres -At -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE pid IN ($backends)" >/dev/null
    wait_until 60 "api-$n to listen again" reconnected_since "$n" "${before:-0}"
}

# fault_action INDEX KIND TARGET SIGNAL HOLD_MS: one action of the schedule.
fault_action() {
    local index="$1" kind="$2" target="$3" signal="$4" hold="$5" start end pid
    start="$(now_ms)"
    case "$kind" in
    kill-ingestor | kill-api | restart-postgres | restart-broker-node)
        signal_and_wait "$target" "$signal" || return 1
        sleep_ms "$hold"
        restart "$target" || return 1
        ;;
    freeze)
        pid="$(target_pid "$target")" || return 1
        kill -STOP "$pid"
        sleep_ms "$hold"
        kill -CONT "$pid"
        back "$target" || return 1
        ;;
    terminate-listener) terminate_listener "$(target_number "$target")" || return 1 ;;
    *)
        warn "unknown fault kind '$kind'"
        return 1
        ;;
    esac
    end="$(now_ms)"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$index" "$kind" "$target" "$signal" "$hold" \
        "$start" "$end" >>"$FAULTS"
    local how=""
    [[ "$signal" == - ]] || how=" (SIG$signal)"
    log "fault $index: $kind $target$how, held $hold ms: back after $((end - start)) ms"
}

# run_schedule SCHEDULE START_MS STILL_RUNNING: carry out the schedule of a
# run that started at START_MS, stopping early when the command STILL_RUNNING
# fails (the load is over).
run_schedule() {
    local schedule="$1" start_ms="$2" still_running="$3" lines=() i j index at
    mapfile -t lines < <(grep -v '^#' "$schedule")
    for ((i = 0; i < ${#lines[@]}; i = j)); do
        IFS=$'\t' read -r index at _ <<<"${lines[i]}"
        local actions=()
        for ((j = i; j < ${#lines[@]}; j++)); do
            [[ "${lines[j]%%$'\t'*}" == "$index" ]] || break
            actions+=("${lines[j]}")
        done
        if ! "$still_running"; then
            warn "the load ended before fault $index; no more faults"
            return 0
        fi
        sleep_ms "$((start_ms + at - $(now_ms)))"
        run_actions "${actions[@]}" || return 1
    done
}

# run_actions ACTION...: start the actions (lines of the schedule) together
# and wait for each; fail if one failed.
run_actions() {
    local action index kind target signal hold pids=() pid failed=0
    for action in "$@"; do
        IFS=$'\t' read -r index _ kind target signal hold <<<"$action"
        fault_action "$index" "$kind" "$target" "$signal" "$hold" &
        pids+=("$!")
    done
    for pid in "${pids[@]}"; do
        wait "$pid" || failed=1
    done
    ((failed == 0)) || warn "fault $index failed"
    return "$failed"
}
