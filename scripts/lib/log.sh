# shellcheck shell=bash
#
# log / warn / die / header / show_log_tail: messages to stderr.
#
# Part of scripts/lib.sh, which sources it; do not source it alone.

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
