# shellcheck shell=bash
#
# cluster_urls / cluster_nodes_alive / cluster_fail: what the three-node
# broker clusters of stan.sh and jetstream.sh share.
#
# A cluster is an instance (.local/NAME/) whose nodes listen on consecutive
# ports: node k (0, 1, 2) takes PORT+k for its clients, ROUTE_PORT+k for the
# routes between the nodes and MONITOR_PORT+k for its monitoring endpoint.
# Node k's pid file is .local/NAME/PREFIX-ID.pid and its log
# .local/NAME/logs/PREFIX-ID.log, where PREFIX names the broker (stan,
# jetstream) and ID the node.
#
# Part of scripts/lib.sh, which sources it; do not source it alone.

# ---------------------------------------------------------------------------
# Three-node clusters
# ---------------------------------------------------------------------------

# Three nodes: the smallest cluster that keeps a majority, and so elects a
# leader, when one node is lost.
CLUSTER_SIZE=3

# cluster_urls SCHEME PORT: the comma-separated URLs of the nodes listening on
# PORT, PORT+1 and PORT+2, e.g. nats://127.0.0.1:4241,nats://127.0.0.1:4242,...
# (the form NATS_URL takes, and --routes).
cluster_urls() {
    local scheme="$1" port="$2" k urls=()
    for ((k = 0; k < CLUSTER_SIZE; k++)); do
        urls+=("$scheme://127.0.0.1:$((port + k))")
    done
    (
        IFS=,
        printf '%s\n' "${urls[*]}"
    )
}

# cluster_nodes_alive NAME PREFIX PATTERN ID...: fail, after the end of every
# node's log, when one of the nodes ID... of cluster NAME is not running (its
# pid file names no live process whose command line holds PATTERN).
cluster_nodes_alive() {
    local name="$1" prefix="$2" pattern="$3" inst id
    shift 3
    inst="$(instance_dir "$name")"
    for id in "$@"; do
        pidfile_pid "$inst/$prefix-$id.pid" "$pattern" >/dev/null ||
            cluster_fail "$name" "$prefix" "node $id of '$name' is not running"
    done
}

# cluster_fail NAME PREFIX MESSAGE: stop the script with the end of each
# node's log, to explain a failure.
cluster_fail() {
    local name="$1" prefix="$2" message="$3" logfile
    for logfile in "$(instance_dir "$name")/logs/$prefix"-*.log; do
        if [[ -e "$logfile" ]]; then
            show_log_tail "$logfile" 15
        fi
    done
    die "$message"
}
