# shellcheck shell=bash
#
# jetstream_start / jetstream_stop / jetstream_wait_ready: a private nats-server
# with JetStream per instance; jetstream_cluster_start / jetstream_cluster_stop
# / jetstream_cluster_wait_leader: a cluster of three, as an instance of its own.
#
# Part of scripts/lib.sh, which sources it; do not source it alone.

# ---------------------------------------------------------------------------
# nats-server with JetStream
# ---------------------------------------------------------------------------

# jetstream_require_bin: set NATS_SERVER_BIN, or fail when the server is not
# installed.
jetstream_require_bin() {
    [[ -n "${NATS_SERVER_BIN:-}" ]] || NATS_SERVER_BIN="$(find_go_tool nats-server)" ||
        die "nats-server is not installed (run ensure_nats_server_installed)"
}

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
    jetstream_require_bin
    ensure_curl_installed

    local inst pidfile logfile pid
    inst="$(instance_dir "$name")"
    pidfile="$inst/jetstream.pid"
    logfile="$inst/logs/jetstream.log"

    if pid="$(jetstream_pid "$name")"; then
        log "nats-server '$name' already running (pid $pid)"
        jetstream_wait_ready "$name" "$mport" 30
        return 0
    fi
    rm -f "$pidfile"
    require_free_ports "choose others with JETSTREAM_PORT / JETSTREAM_MONITOR_PORT" "$port" "$mport"

    mkdir -p "$inst/jetstream"
    log "starting nats-server (JetStream) '$name' on 127.0.0.1:$port (monitoring $mport)"
    # The server keeps its streams in jetstream/ under the folder given to -sd.
    spawn_detached "$pidfile" "$logfile" "$NATS_SERVER_BIN" \
        -js -sd "$inst/jetstream" -n "$name" \
        -a 127.0.0.1 -p "$port" -m "$mport" \
        -P "$pidfile"

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

# ---------------------------------------------------------------------------
# A JetStream cluster of three nodes (see cluster.sh for the ports)
# ---------------------------------------------------------------------------

# The server names of a cluster's nodes, in the order of their ports.
JETSTREAM_CLUSTER_NODES=(node-1 node-2 node-3)

# The name the nodes give their cluster (--cluster_name): routes between
# servers of another name are refused.
JETSTREAM_CLUSTER_NAME=orders

# jetstream_meta_leader MONITOR_PORT: the server name of the JetStream meta
# leader as a node sees it (meta_cluster.leader of its /jsz), when the node is
# healthy (its /healthz: JetStream up and current with the leader); nothing
# otherwise.
jetstream_meta_leader() {
    curl -sf --max-time 2 -o /dev/null "http://127.0.0.1:$1/healthz" 2>/dev/null || return 0
    curl -sf --max-time 2 "http://127.0.0.1:$1/jsz" 2>/dev/null |
        sed -n '/"leader":/{s/^ *"leader": *"\([^"]*\)".*/\1/p;q}' || true
}

# jetstream_node_start NAME ID PORT ROUTE_PORT MONITOR_PORT ROUTES: start node
# ID (its server name) of cluster NAME, unless it runs: its streams in
# .local/NAME/ID/jetstream/, routes (ROUTES, every node's route URL) to the
# other nodes.
jetstream_node_start() {
    local name="$1" id="$2" port="$3" rport="$4" mport="$5" routes="$6" inst pid
    inst="$(instance_dir "$name")"
    if pid="$(pidfile_pid "$inst/jetstream-$id.pid" nats-server)"; then
        log "nats-server $id of '$name' already running (pid $pid)"
        return 0
    fi
    require_free_ports "another cluster may be running" "$port" "$rport" "$mport"
    mkdir -p "$inst/$id"
    log "starting nats-server $id of '$name' on 127.0.0.1:$port (routes $rport, monitoring $mport)"
    spawn_detached "$inst/jetstream-$id.pid" "$inst/logs/jetstream-$id.log" "$NATS_SERVER_BIN" \
        -js -sd "$inst/$id" -n "$id" \
        -a 127.0.0.1 -p "$port" -m "$mport" \
        --cluster_name "$JETSTREAM_CLUSTER_NAME" \
        --cluster "nats://127.0.0.1:$rport" --routes "$routes" \
        -P "$inst/jetstream-$id.pid"
}

# jetstream_cluster_start NAME PORT ROUTE_PORT MONITOR_PORT: start the three
# nodes of cluster NAME (those that do not run) and wait until they agree on a
# JetStream meta leader. Idempotent.
jetstream_cluster_start() {
    local name="$1" port="$2" rport="$3" mport="$4" routes k
    jetstream_require_bin
    ensure_curl_installed
    routes="$(cluster_urls nats "$rport")"
    for k in "${!JETSTREAM_CLUSTER_NODES[@]}"; do
        jetstream_node_start "$name" "${JETSTREAM_CLUSTER_NODES[k]}" \
            "$((port + k))" "$((rport + k))" "$((mport + k))" "$routes"
    done
    jetstream_cluster_wait_leader "$name" "$mport" 60
}

# jetstream_cluster_wait_leader NAME MONITOR_PORT [TIMEOUT_SECONDS]: wait until
# every node of cluster NAME is healthy and names the same meta leader (the
# leader of the cluster's JetStream metadata: streams and consumers are
# created through it; each stream then elects a leader of its own).
jetstream_cluster_wait_leader() {
    local name="$1" mport="$2" timeout="${3:-60}" i k leader seen agreed
    for ((i = 0; i < timeout * 4; i++)); do
        cluster_nodes_alive "$name" jetstream nats-server "${JETSTREAM_CLUSTER_NODES[@]}"
        seen="" agreed=""
        for k in "${!JETSTREAM_CLUSTER_NODES[@]}"; do
            leader="$(jetstream_meta_leader "$((mport + k))")"
            seen+=" ${JETSTREAM_CLUSTER_NODES[k]}:${leader:-none}"
            # The first node's view, kept while the others share it.
            if ((k == 0)); then
                agreed="$leader"
            elif [[ "$leader" != "$agreed" ]]; then
                agreed=""
            fi
        done
        if [[ -n "$agreed" ]]; then
            log "JetStream cluster '$name': $agreed is the meta leader"
            return 0
        fi
        sleep 0.25
    done
    cluster_fail "$name" jetstream "JetStream cluster '$name' has no meta leader every node agrees on after ${timeout}s (seen:$seen)"
}

# jetstream_cluster_stop NAME: stop every node of cluster NAME, as
# jetstream_stop does.
jetstream_cluster_stop() {
    local name="$1" inst id
    inst="$(instance_dir "$name")"
    for id in "${JETSTREAM_CLUSTER_NODES[@]}"; do
        stop_pidfile "nats-server $id of '$name'" "$inst/jetstream-$id.pid" \
            nats-server 20 TERM QUIT
    done
}
