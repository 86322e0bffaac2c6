# shellcheck shell=bash
#
# A Docker engine with Compose v2 and BuildKit, for scripts/check-compose. Source it after
# scripts/lib.sh:
#   * ensure_docker_engine   install Debian's docker.io when dockerd is missing, and start dockerd
#                            in the background when no engine answers (DOCKERD_STARTED=1 then)
#   * stop_docker_engine     stop dockerd again, only when ensure_docker_engine started it
#   * ensure_compose_plugins the CLI plugins `docker compose` (v2) and `docker buildx`, built from
#                            their Go modules when missing (Debian packages neither), kept in
#                            .local/tools/docker-cli-plugins/ and installed for the docker CLI
#
# Nothing here pulls an image: see deploy/standins/build for the base images.

# shellcheck disable=SC2034 # read by the scripts that source this file
COMPOSE_VERSION=v2.40.3
BUILDX_VERSION=v0.38.2

DOCKER_LOCAL="$ROOT/.local/docker"
DOCKERD_STARTED=0

# docker_answers: true when an engine answers the docker CLI.
docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

ensure_docker_engine() {
    if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
        apt_install docker.io
    fi
    if docker_answers; then
        log "a Docker engine answers: $(docker version --format '{{.Server.Version}}' 2>/dev/null)"
        return 0
    fi
    [[ $EUID -eq 0 ]] || die "no Docker engine answers, and starting dockerd needs root"
    mkdir -p "$DOCKER_LOCAL"
    log "starting dockerd (log: ${DOCKER_LOCAL#"$ROOT"/}/dockerd.log)"
    dockerd >"$DOCKER_LOCAL/dockerd.log" 2>&1 &
    echo $! >"$DOCKER_LOCAL/dockerd.pid"
    DOCKERD_STARTED=1
    local i
    for ((i = 0; i < 120; i++)); do
        docker_answers && break
        pid_running "$(cat "$DOCKER_LOCAL/dockerd.pid")" || break
        sleep 0.5
    done
    if ! docker_answers; then
        show_log_tail "$DOCKER_LOCAL/dockerd.log"
        die "dockerd did not answer within 60 s"
    fi
    log "dockerd $(docker version --format '{{.Server.Version}}') is up"
}

stop_docker_engine() {
    [[ "$DOCKERD_STARTED" == 1 ]] || return 0
    # dockerd stops its containers first (10 s each at most), then exits.
    stop_pidfile dockerd "$DOCKER_LOCAL/dockerd.pid" dockerd 60
    DOCKERD_STARTED=0
}

# plugin_works NAME: true when `docker NAME version` runs and names a real version.
plugin_works() {
    local out
    out="$(docker "$1" version 2>/dev/null)" || return 1
    [[ -n "$out" && "$out" != *v0.0.0* && "$out" != *" dev"* ]]
}

# build_go_plugin NAME MODULE VERSION LDFLAGS: build a CLI plugin into the cache folder. Compose's
# go.mod has `exclude` directives, which `go install MODULE@VERSION` refuses; so both are built
# from a throwaway module that requires them.
build_go_plugin() {
    local name="$1" module="$2" version="$3" ldflags="$4" go work status=0
    go="$(find_go)" || die "Go is needed to build docker-$name but was not found"
    work="$ROOT/.local/tools/go-build-$name"
    rm -rf "$work"
    mkdir -p "$work" "$PLUGIN_CACHE"
    printf '//go:build tools\n\npackage tools\n\nimport _ "%s"\n' "$module" >"$work/tools.go"
    log "building docker-$name $version from $module (a few minutes on a fresh machine)"
    (
        cd "$work"
        "$go" mod init plugin-build >/dev/null 2>&1
        "$go" get "$module@$version" >&2 ||
            GOSUMDB=off "$go" get "$module@$version" >&2
        "$go" build -ldflags "$ldflags" -o "$PLUGIN_CACHE/docker-$name" "$module" >&2
    ) || status=$?
    rm -rf "$work"
    [[ $status -eq 0 ]] || die "building docker-$name failed"
}

# ensure_plugin NAME MODULE VERSION LDFLAGS: `docker NAME` works, built and installed if need be.
ensure_plugin() {
    local name="$1" installed="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
    plugin_works "$name" && return 0
    [[ -x "$PLUGIN_CACHE/docker-$name" ]] || build_go_plugin "$@"
    mkdir -p "$installed"
    install -m 0755 "$PLUGIN_CACHE/docker-$name" "$installed/docker-$name"
    plugin_works "$name" || die "docker $name does not work after installing it in $installed"
    log "installed docker-$name in $installed"
}

ensure_compose_plugins() {
    PLUGIN_CACHE="$ROOT/.local/tools/docker-cli-plugins"
    ensure_plugin buildx github.com/docker/buildx/cmd/buildx "$BUILDX_VERSION" \
        "-X github.com/docker/buildx/version.Version=$BUILDX_VERSION"
    ensure_plugin compose github.com/docker/compose/v2/cmd "$COMPOSE_VERSION" \
        "-X github.com/docker/compose/v2/internal.Version=$COMPOSE_VERSION"
    log "$(docker compose version), buildx $(docker buildx version | awk '{print $2}')"
}
