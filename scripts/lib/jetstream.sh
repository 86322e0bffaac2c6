# shellcheck shell=bash
#
# jetstream_start / jetstream_stop / jetstream_wait_ready: a private nats-server
# with JetStream per instance.
#
# Part of scripts/lib.sh, which sources it; do not source it alone.

# jetstream_pid NAME: pid of the instance's running server, if any.
jetstream_pid() {
    pidfile_pid "$(instance_dir "$1")/jetstream.pid" nats-server
}

# jetstream_wait_ready NAME MONITOR_PORT [TIMEOUT_SECONDS]: wait until the
# server says JetStream is up (its /healthz, with js-enabled-only).
jetstream_wait_ready() {
    local name="$1" mport="$2" timeout="${3:-30}" inst i
    inst="$(instance_dir "$name")"
    local url="http://127.0.0.1:$mport/healthz?js-enabled-only=true"
    for ((i = 0; i < timeout * 4; i++)); do
        if curl -sf --max-time 2 -o /dev/null "$url"; then
            return 0
        fi
        if ! jetstream_pid "$name" >/dev/null; then
            show_log_tail "$inst/logs/jetstream.log"
            die "nats-server '$name' exited during start-up"
        fi
        sleep 0.25
    done
    show_log_tail "$inst/logs/jetstream.log"
    die "nats-server '$name' does not answer on $url after ${timeout}s"
}

# jetstream_start NAME PORT MONITOR_PORT: start the nats-server with JetStream
# of instance NAME (file store in the instance, kept across restarts).
# Idempotent.
jetstream_start() {
    local name="$1" port="$2" mport="$3"
    [[ "$port" =~ ^[0-9]+$ && "$mport" =~ ^[0-9]+$ ]] ||
        die "jetstream_start: invalid ports '$port' '$mport'"
    [[ -n "${NATS_SERVER_BIN:-}" ]] || NATS_SERVER_BIN="$(find_go_tool nats-server)" ||
        die "nats-server is not installed (run ensure_nats_server_installed)"
    ensure_curl_installed

    local inst pidfile logfile pid p
    inst="$(instance_dir "$name")"
    pidfile="$inst/jetstream.pid"
    logfile="$inst/logs/jetstream.log"

    if pid="$(jetstream_pid "$name")"; then
        log "nats-server '$name' already running (pid $pid)"
        jetstream_wait_ready "$name" "$mport" 30
        return 0
    fi
    rm -f "$pidfile"
    for p in "$port" "$mport"; do
        if port_in_use "$p"; then
            die "port $p is already used by another program; choose others with JETSTREAM_PORT / JETSTREAM_MONITOR_PORT"
        fi
    done

    mkdir -p "$inst/jetstream"
    log "starting nats-server (JetStream) '$name' on 127.0.0.1:$port (monitoring $mport)"
    # setsid detaches the server from the terminal, so it survives the shell
    # that started it. The server rewrites the pid file itself (-P).
    setsid "$NATS_SERVER_BIN" \
        -js -sd "$inst/jetstream" -n "$name" \
        -a 127.0.0.1 -p "$port" -m "$mport" \
        -P "$pidfile" \
        </dev/null >>"$logfile" 2>&1 &
    echo "$!" >"$pidfile"
    wait_exec "$!" "$NATS_SERVER_BIN"

    jetstream_wait_ready "$name" "$mport" 30
}

# jetstream_stop NAME: stop the nats-server of instance NAME if running.
# SIGTERM: it closes its store and exits; SIGQUIT after 20 s makes the Go
# runtime write where each goroutine waited to its log.
jetstream_stop() {
    local name="$1"
    stop_pidfile "nats-server '$name'" "$(instance_dir "$name")/jetstream.pid" \
        nats-server 20 TERM QUIT
}
