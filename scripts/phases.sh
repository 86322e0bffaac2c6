# shellcheck shell=bash
#
# Timed phases of a long script. Source it after scripts/lib.sh:
#   phase NAME        ends the phase in progress (if any), prints NAME as a header, starts timing
#   phase_end         ends the phase in progress
#   print_phases      ends the phase in progress and prints every phase with its duration
# A script calls print_phases from its EXIT trap, so that a failed run shows where time went too.

PHASES=()
PHASE_NAME=""
PHASE_START=0

phase() {
    phase_end
    PHASE_NAME="$1"
    PHASE_START=$SECONDS
    header "$1"
}

phase_end() {
    if [[ -n "$PHASE_NAME" ]]; then
        PHASES+=("$(printf '%5d s  %s' "$((SECONDS - PHASE_START))" "$PHASE_NAME")")
        log "$((SECONDS - PHASE_START)) s: $PHASE_NAME"
    fi
    PHASE_NAME=""
}

print_phases() {
    phase_end
    [[ ${#PHASES[@]} -gt 0 ]] || return 0
    printf '\nPhases of %s (%d s in all):\n' "$(basename "$0")" "$SECONDS" >&2
    printf '  %s\n' "${PHASES[@]}" >&2
}
