# shellcheck shell=bash
#
# stan_start / stan_stop / stan_wait_ready: a private NATS Streaming
# server per instance.
#
# Part of scripts/lib.sh, which sources it; do not source it alone.

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
    wait_exec "$!" "$STAN_BIN"

    stan_wait_ready "$name" "$mport" 30
}

# stan_stop NAME: stop the NATS Streaming server of instance NAME if running.
# SIGTERM: the server shuts down cleanly (its store is closed) and exits, within
# milliseconds. Should it ever hang, SIGQUIT after 20 s makes the Go runtime write
# where each goroutine waited to the server's log before it exits.
stan_stop() {
    local name="$1"
    stop_pidfile "NATS Streaming '$name'" "$(instance_dir "$name")/stan.pid" \
        nats-streaming-server 20 TERM QUIT
}
