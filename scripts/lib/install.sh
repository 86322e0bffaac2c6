# shellcheck shell=bash
#
# ensure_*_installed, go_install, ensure_python_venv, npm_install_locked,
# ensure_cargo / build_debug_bins: the tools, each a fast no-op when present.
#
# Part of scripts/lib.sh, which sources it; do not source it alone.

# ---------------------------------------------------------------------------
# Installation of the tools (each is a fast no-op when already present)
# ---------------------------------------------------------------------------

ensure_curl_installed() {
    command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
}

# ensure_wrk_installed: Debian's wrk, the light HTTP load generator of the
# benchmarks.
ensure_wrk_installed() {
    command -v wrk >/dev/null 2>&1 || apt_install wrk
}

# detect_pg_bin: set PG_BIN to the newest /usr/lib/postgresql/*/bin, unless
# PG_BIN is already set to a directory holding pg_ctl. Fails when not found.
detect_pg_bin() {
    if [[ -n "${PG_BIN:-}" && -x "${PG_BIN}/pg_ctl" ]]; then
        export PG_BIN
        return 0
    fi
    local candidate
    candidate="$(
        for d in /usr/lib/postgresql/*/bin; do
            if [[ -x "$d/pg_ctl" ]]; then
                printf '%s\n' "$d"
            fi
        done | sort -V | tail -n 1
    )"
    [[ -n "$candidate" ]] || return 1
    PG_BIN="$candidate"
    export PG_BIN
}

# ensure_postgres_installed: make sure the PostgreSQL server binaries exist
# (Debian's `postgresql` package) and export PG_BIN.
ensure_postgres_installed() {
    if ! detect_pg_bin; then
        # Note: on Debian the package also creates (and may start) a system
        # cluster on port 5432; it is unrelated to ours and left alone.
        apt_install postgresql
        detect_pg_bin || die "PostgreSQL installed, but no /usr/lib/postgresql/*/bin/pg_ctl found"
    fi
    # `runuser` (util-linux) is needed to run the server as user postgres.
    if [[ $EUID -eq 0 ]] && ! command -v runuser >/dev/null 2>&1; then
        apt_install util-linux
    fi
}

# find_go: print the path of the Go toolchain.
find_go() {
    if command -v go >/dev/null 2>&1; then
        command -v go
    elif [[ -x /usr/local/go/bin/go ]]; then
        printf '%s\n' /usr/local/go/bin/go
    else
        return 1
    fi
}

# go_bin_dir: directory where `go install` puts binaries.
go_bin_dir() {
    local go gobin
    go="$(find_go)" || return 1
    gobin="$("$go" env GOBIN)"
    if [[ -n "$gobin" ]]; then
        printf '%s\n' "$gobin"
    else
        printf '%s/bin\n' "$("$go" env GOPATH)"
    fi
}

# find_go_tool NAME: print the path of a binary installed by `go install` (or
# found on PATH). Fails when it is nowhere to be found.
find_go_tool() {
    local name="$1" dir
    if command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
        return 0
    fi
    dir="$(go_bin_dir 2>/dev/null)" || return 1
    [[ -x "$dir/$name" ]] || return 1
    printf '%s\n' "$dir/$name"
}

# go_install MODULE@VERSION: build and install a Go program from source. When
# the checksum database (sum.golang.org) cannot be reached, retry once without
# it.
go_install() {
    local module="$1" go out status=0
    go="$(find_go)" || die "Go is needed to build $module but was not found (expected 'go' on PATH or /usr/local/go/bin/go)"
    log "building $module with go install (this can take a minute)"
    out="$(mktemp)"
    # Build from a neutral directory so no surrounding go.mod is picked up.
    (cd / && "$go" install "$module") 2>&1 | tee "$out" >&2 || status=$?
    if [[ $status -ne 0 ]] && grep -qiE 'sum\.golang\.org|verifying .*(module|go\.mod)|GOSUMDB' "$out"; then
        warn "checksum database unreachable; retrying once with GOSUMDB=off"
        status=0
        (cd / && GOSUMDB=off "$go" install "$module") >&2 || status=$?
    fi
    rm -f "$out"
    [[ $status -eq 0 ]] || die "go install $module failed"
}

# ensure_stan_installed: make sure nats-streaming-server exists; export STAN_BIN.
ensure_stan_installed() {
    if ! STAN_BIN="$(find_go_tool nats-streaming-server)"; then
        go_install "$STAN_MODULE"
        STAN_BIN="$(find_go_tool nats-streaming-server)" ||
            die "nats-streaming-server was built but cannot be found in $(go_bin_dir)"
    fi
    export STAN_BIN
}

# ensure_nats_server_installed: make sure nats-server (JetStream) exists; export
# NATS_SERVER_BIN. Built from the Go module proxy: Debian's nats-server is older
# than what the async-nats client is tested against.
ensure_nats_server_installed() {
    if ! NATS_SERVER_BIN="$(find_go_tool nats-server)"; then
        go_install "$NATS_SERVER_MODULE"
        NATS_SERVER_BIN="$(find_go_tool nats-server)" ||
            die "nats-server was built but cannot be found in $(go_bin_dir)"
    fi
    export NATS_SERVER_BIN
}

# ensure_vegeta_installed: make sure vegeta (HTTP load tester) exists; export VEGETA_BIN.
ensure_vegeta_installed() {
    if ! VEGETA_BIN="$(find_go_tool vegeta)"; then
        go_install "$VEGETA_MODULE"
        VEGETA_BIN="$(find_go_tool vegeta)" ||
            die "vegeta was built but cannot be found in $(go_bin_dir)"
    fi
    export VEGETA_BIN
}

# ensure_chromium_installed: make sure Debian's chromium exists; export
# CHROMIUM_BIN. Tests drive this browser; none is ever downloaded.
ensure_chromium_installed() {
    CHROMIUM_BIN=/usr/bin/chromium
    if [[ ! -x "$CHROMIUM_BIN" ]]; then
        apt_install chromium
        [[ -x "$CHROMIUM_BIN" ]] || die "chromium was installed, but $CHROMIUM_BIN is missing"
    fi
    export CHROMIUM_BIN
}

# ensure_node_installed: make sure node (20 or newer) and npm exist.
ensure_node_installed() {
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm
    fi
    local major
    major="$(node -p 'process.versions.node.split(".")[0]')"
    if [[ ! "$major" =~ ^[0-9]+$ ]] || ((major < 20)); then
        die "node $(node --version) is too old: version 20 or newer is needed"
    fi
}

# npm_install_locked DIR: install the node packages of DIR exactly as its
# package-lock.json pins them (`npm ci`, with no install scripts, so nothing
# but the registry's packages is fetched), unless they already are.
npm_install_locked() {
    local dir="$1" stamp="$1/node_modules/.installed-lock.json"
    [[ -f "$dir/package-lock.json" ]] || die "no package-lock.json in $dir"
    if [[ -f "$stamp" ]] && cmp -s "$stamp" "$dir/package-lock.json"; then
        return 0
    fi
    log "installing the node packages of ${dir#"$ROOT"/} (npm ci)"
    (cd "$dir" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error) >&2 ||
        die "npm ci failed in ${dir#"$ROOT"/}"
    cp "$dir/package-lock.json" "$stamp"
}

# ensure_python_venv VENV REQUIREMENT...: a virtual environment at VENV
# holding the pinned REQUIREMENTs (pip specifiers such as name==1.2.3),
# recreated only when the list changes.
ensure_python_venv() {
    local venv="$1" stamp="$1/.installed"
    shift
    if [[ -x "$venv/bin/python" && "$(cat "$stamp" 2>/dev/null)" == "$*" ]]; then
        return 0
    fi
    command -v python3 >/dev/null 2>&1 || apt_install python3
    log "installing $* into ${venv#"$ROOT"/}"
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    if ! python3 -m venv "$venv" 2>/dev/null; then
        rm -rf "$venv"
        apt_install python3-venv
        python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install -q --disable-pip-version-check "$@"
    printf '%s\n' "$*" >"$stamp"
}

# ensure_cargo: make a rustup installation usable even when ~/.cargo/bin is
# not on PATH.
ensure_cargo() {
    if ! command -v cargo >/dev/null 2>&1 && [[ -x "$HOME/.cargo/bin/cargo" ]]; then
        PATH="$HOME/.cargo/bin:$PATH"
    fi
    command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust (https://rustup.rs) first"
}

# build_debug_bins PROGRAM...: build the debug binaries of the workspace
# (`cargo build --bins`, a no-op after `cargo test`) and check that each
# PROGRAM is in BIN_DIR.
build_debug_bins() {
    ensure_cargo
    header "Building the debug binaries (cargo build --bins)"
    (cd "$ROOT" && cargo build --bins)
    local bin
    for bin in "$@"; do
        [[ -x "$BIN_DIR/$bin" ]] || die "cargo build did not produce $BIN_DIR/$bin"
    done
}
