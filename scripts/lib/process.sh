# shellcheck shell=bash
#
# as_root, apt_install, background processes and their pid files
# (spawn_detached, pid_running, pidfile_pid, stop_pidfile),
# port_in_use / require_free_ports and instance_dir: process and instance
# plumbing.
#
# Part of scripts/lib.sh, which sources it; do not source it alone.

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

# pid_running PID: true when PID is a live process. Zombies count as dead (a
# container's init may never reap them), and so does a process whose /proc entry
# is gone. Only builtins run here: a command substitution makes bash wait for a
# child, and that wait reaps any child of ours that has exited, so `kill -0`
# followed by a read of /proc/PID/stat in a subshell could see the process alive
# and then not find it, and take it for a live one.
pid_running() {
    local pid="$1" stat state
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 1
    # "PID (COMMAND) STATE ...": the command may hold spaces and parentheses.
    state="${stat##*) }"
    state="${state%% *}"
    [[ -n "$state" && "$state" != Z && "$state" != X ]]
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

# wait_exec PID PROGRAM: wait (up to 5 s) until the child PID, just forked,
# has executed PROGRAM or is gone. Until then its command line is the shell's,
# or that of `env` and `setsid`, which start PROGRAM and name it among their
# arguments; and while one of them executes the next, its command line reads
# empty. A check of the command line meanwhile would take it for a dead
# process, so the wait lasts until the first word is neither env nor setsid.
wait_exec() {
    local pid="$1" program="$2" i cmdline first
    for ((i = 0; i < 50; i++)); do
        cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
        first="${cmdline%% *}"
        if [[ "$cmdline" == *"$program"* && "${first##*/}" != env && "${first##*/}" != setsid ]] ||
            ! pid_running "$pid"; then
            return 0
        fi
        sleep 0.1
    done
}

# spawn_detached PIDFILE LOGFILE PROGRAM ARGS...: run PROGRAM in the
# background, detached from the terminal by setsid so that it survives the
# shell that started it, its output appended to LOGFILE and its pid written to
# PIDFILE; return once it has executed PROGRAM. The servers started this way
# also rewrite PIDFILE themselves (-P).
spawn_detached() {
    local pidfile="$1" logfile="$2" program="$3"
    shift 3
    setsid "$program" "$@" </dev/null >>"$logfile" 2>&1 &
    echo "$!" >"$pidfile"
    wait_exec "$!" "$program"
}

# stop_pidfile LABEL PIDFILE [PATTERN] [TIMEOUT_SECONDS] [SIGNAL] [LAST]: send
# SIGNAL (default TERM) to the process recorded in PIDFILE, wait up to TIMEOUT
# seconds for it to exit, send LAST (default KILL; QUIT makes a Go program
# write every goroutine's stack to its log as it exits) if it is still there,
# SIGKILL after 5 s more, and remove the pid file. No-op if it is not running.
stop_pidfile() {
    local label="$1" pidfile="$2" pattern="${3:-}" timeout="${4:-15}" signal="${5:-TERM}"
    local last="${6:-KILL}" pid i
    if ! pid="$(pidfile_pid "$pidfile" "$pattern")"; then
        rm -f "$pidfile"
        return 0
    fi
    log "stopping $label (pid $pid)"
    kill -"$signal" "$pid" 2>/dev/null || true
    local exited=""
    for ((i = 0; i < timeout * 10; i++)); do
        if ! pid_running "$pid"; then
            exited=yes
            break
        fi
        sleep 0.1
    done
    # Decided on the loop's last look: a second look could see another state.
    if [[ -z "$exited" ]]; then
        warn "$label (pid $pid) did not exit within ${timeout}s; sending SIG$last"
        kill -"$last" "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            pid_running "$pid" || break
            sleep 0.1
        done
        if pid_running "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
    rm -f "$pidfile"
}

# port_in_use PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_in_use() {
    timeout 2 bash -c ": </dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# require_free_ports HINT PORT...: stop the script when another program listens
# on one of the PORTs; HINT says how to choose others.
require_free_ports() {
    local hint="$1" port
    shift
    for port in "$@"; do
        if port_in_use "$port"; then
            die "port $port is already used by another program; $hint"
        fi
    done
}

# instance_dir NAME: folder holding everything of instance NAME (created).
instance_dir() {
    local name="$1"
    [[ "$name" =~ ^[A-Za-z0-9_-]+$ ]] || die "invalid instance name: '$name'"
    local dir="$ROOT/.local/$name"
    mkdir -p "$dir/logs"
    printf '%s\n' "$dir"
}
