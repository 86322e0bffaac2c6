# shellcheck shell=bash
#
# stan_start / stan_stop / stan_wait_ready: a private NATS Streaming
# server per instance; stan_cluster_start / stan_cluster_stop /
# stan_cluster_wait_leader: a cluster of three, as an instance of its own.
#
# Part of scripts/lib.sh, which sources it; do not source it alone.

# ---------------------------------------------------------------------------
# NATS Streaming (STAN)
# ---------------------------------------------------------------------------

# The flags every server of ours takes: no limit on channels, subscriptions
# and messages, and a client that misses three heartbeats, 2 s apart, is
# dropped (so a killed client's subscriptions are freed within seconds).
STAN_SERVER_FLAGS=(
    --max_channels 0 --max_subs 0 --max_msgs 0 --max_bytes 0 --max_age 0s
    --hb_interval 2s --hb_timeout 2s --hb_fail_count 3
)

# stan_require_bin: set STAN_BIN, or fail when the server is not installed.
stan_require_bin() {
    [[ -n "${STAN_BIN:-}" ]] || STAN_BIN="$(find_go_tool nats-streaming-server)" ||
        die "nats-streaming-server is not installed (run ensure_stan_installed)"
}

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
    stan_require_bin
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

    require_free_ports "choose others with STAN_PORT / STAN_MONITOR_PORT" "$port" "$mport"

    mkdir -p "$inst/stan"
    log "starting NATS Streaming '$name' on 127.0.0.1:$port (monitoring $mport)"
    spawn_detached "$pidfile" "$logfile" "$STAN_BIN" \
        --cluster_id "$STAN_CLUSTER_ID" \
        --store file --dir "$inst/stan" \
        -a 127.0.0.1 -p "$port" -m "$mport" \
        "${STAN_SERVER_FLAGS[@]}" \
        -P "$pidfile"

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

# ---------------------------------------------------------------------------
# A NATS Streaming cluster of three nodes (see cluster.sh for the ports)
# ---------------------------------------------------------------------------

# The node ids of a cluster, in the order of their ports.
STAN_CLUSTER_NODES=(a b c)

# stan_node_role MONITOR_PORT: the role a clustered node reports on its
# /streaming/serverz ("Leader", "Follower" or "Candidate"); nothing when it
# does not answer.
stan_node_role() {
    curl -sf --max-time 2 "http://127.0.0.1:$1/streaming/serverz" 2>/dev/null |
        sed -n 's/^ *"role": *"\([A-Za-z]*\)".*/\1/p' || true
}

# stan_node_start NAME ID PORT ROUTE_PORT MONITOR_PORT ROUTES: start node ID of
# cluster NAME, unless it runs: file store and Raft log in .local/NAME/ID/,
# an embedded NATS server whose routes (ROUTES, every node's route URL) join
# the nodes, the cluster's peers fixed at a, b and c.
stan_node_start() {
    local name="$1" id="$2" port="$3" rport="$4" mport="$5" routes="$6" inst pid peers
    inst="$(instance_dir "$name")"
    if pid="$(pidfile_pid "$inst/stan-$id.pid" nats-streaming-server)"; then
        log "NATS Streaming node $id of '$name' already running (pid $pid)"
        return 0
    fi
    require_free_ports "another cluster may be running" "$port" "$rport" "$mport"
    mkdir -p "$inst/$id/store" "$inst/$id/raft"
    peers="$(IFS=,; printf '%s' "${STAN_CLUSTER_NODES[*]}")"
    log "starting NATS Streaming node $id of '$name' on 127.0.0.1:$port (routes $rport, monitoring $mport)"
    spawn_detached "$inst/stan-$id.pid" "$inst/logs/stan-$id.log" "$STAN_BIN" \
        --cluster_id "$STAN_CLUSTER_ID" \
        --store file --dir "$inst/$id/store" \
        --clustered --cluster_node_id "$id" --cluster_peers "$peers" \
        --cluster_log_path "$inst/$id/raft" \
        -a 127.0.0.1 -p "$port" -m "$mport" \
        --cluster "nats://127.0.0.1:$rport" --routes "$routes" \
        "${STAN_SERVER_FLAGS[@]}" \
        -P "$inst/stan-$id.pid"
}

# stan_cluster_start NAME PORT ROUTE_PORT MONITOR_PORT: start the three nodes
# of cluster NAME (those that do not run) and wait until they elect a leader.
# Idempotent.
stan_cluster_start() {
    local name="$1" port="$2" rport="$3" mport="$4" routes k
    stan_require_bin
    ensure_curl_installed
    routes="$(cluster_urls nats "$rport")"
    for k in "${!STAN_CLUSTER_NODES[@]}"; do
        stan_node_start "$name" "${STAN_CLUSTER_NODES[k]}" \
            "$((port + k))" "$((rport + k))" "$((mport + k))" "$routes"
    done
    stan_cluster_wait_leader "$name" "$mport" 60
}

# stan_cluster_wait_leader NAME MONITOR_PORT [TIMEOUT_SECONDS]: wait until
# every node of cluster NAME answers and exactly one says it is the leader
# (the first election takes a few seconds: the Raft election timeout).
stan_cluster_wait_leader() {
    local name="$1" mport="$2" timeout="${3:-60}" i k role roles leaders
    for ((i = 0; i < timeout * 4; i++)); do
        cluster_nodes_alive "$name" stan nats-streaming-server "${STAN_CLUSTER_NODES[@]}"
        roles="" leaders=()
        for k in "${!STAN_CLUSTER_NODES[@]}"; do
            role="$(stan_node_role "$((mport + k))")"
            roles+=" ${STAN_CLUSTER_NODES[k]}=${role:-silent}"
            if [[ "$role" == Leader ]]; then
                leaders+=("${STAN_CLUSTER_NODES[k]}")
            fi
        done
        if [[ ${#leaders[@]} -eq 1 && "$roles" != *=silent* ]]; then
            log "NATS Streaming cluster '$name': node ${leaders[0]} leads"
            return 0
        fi
        sleep 0.25
    done
    cluster_fail "$name" stan "NATS Streaming cluster '$name' has no single leader after ${timeout}s (roles:$roles)"
}

# stan_cluster_stop NAME: stop every node of cluster NAME, as stan_stop does.
stan_cluster_stop() {
    local name="$1" inst id
    inst="$(instance_dir "$name")"
    for id in "${STAN_CLUSTER_NODES[@]}"; do
        stop_pidfile "NATS Streaming node $id of '$name'" "$inst/stan-$id.pid" \
            nats-streaming-server 20 TERM QUIT
    done
}
