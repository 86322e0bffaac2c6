# shellcheck shell=bash
#
# CPU accounting from /proc for the benchmarks: the user + system time of
# processes, in clock ticks, and what each used between two snapshots.
# Sourced by loadtest/run and loadtest/ingest-scaling; do not execute it.

TICKS_PER_SECOND="$(getconf CLK_TCK)"

# cpu_ticks PID [WITH_CHILDREN]: the CPU ticks of PID (and of its waited-for
# children, with WITH_CHILDREN=1); 0 if it is gone.
cpu_ticks() {
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || {
        echo 0
        return
    }
    # Fields after the command name, which is in parentheses and may hold spaces.
    awk -v kids="${2:-0}" '{ print $12 + $13 + (kids ? $14 + $15 : 0) }' <<<"${stat##*) }"
}

# cpu_postgres_ticks DATA_DIR: the PostgreSQL server of DATA_DIR and every
# backend, living or gone.
cpu_postgres_ticks() {
    local main total child
    main="$(head -n1 "$1/postmaster.pid")"
    total="$(cpu_ticks "$main" 1)"
    for child in $(pgrep -P "$main"); do
        total=$((total + $(cpu_ticks "$child")))
    done
    echo "$total"
}

# cpu_used BEFORE AFTER WALL_SECONDS: from two snapshots of "name ticks"
# lines (files; - for standard input), the CPU seconds each process used in
# between, as {"wall_seconds": W, "processes": {"name": seconds, ...}}, with
# the processes that used 0.05 s or more.
cpu_used() {
    awk -v wall="$3" -v hz="$TICKS_PER_SECOND" '
        NR == FNR { before[$1] = $2; next }
        { used = ($2 - before[$1]) / hz; if (used >= 0.05) { list = list sep sprintf("\"%s\": %.2f", $1, used); sep = ", " } }
        END { printf "{\"wall_seconds\": %.2f, \"processes\": {%s}}\n", wall, list }
    ' "$1" "$2"
}
