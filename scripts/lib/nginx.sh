# shellcheck shell=bash
#
# ensure_nginx_installed, nginx_write_config / nginx_start, api_stop_all:
# a local nginx balancing over several api processes.
#
# Part of scripts/lib.sh, which sources it; do not source it alone.

# ---------------------------------------------------------------------------
# nginx: the load balancer in front of several api processes
# ---------------------------------------------------------------------------

# ensure_nginx_installed: make sure Debian's nginx exists; export NGINX_BIN.
# Note: on a machine with systemd the package also starts a system nginx on
# port 80; it is unrelated to ours and left alone.
ensure_nginx_installed() {
    if ! NGINX_BIN="$(command -v nginx || command -v /usr/sbin/nginx)"; then
        apt_install nginx
        NGINX_BIN="$(command -v nginx || command -v /usr/sbin/nginx)" ||
            die "nginx was installed, but no nginx binary was found"
    fi
    export NGINX_BIN
}

# nginx_write_config CONF LISTEN_ADDR LOG_DIR UPSTREAM_PORT...: write the
# configuration of a local nginx that listens on LISTEN_ADDR (host:port) and
# balances round-robin over api processes on 127.0.0.1:UPSTREAM_PORT..., the
# same kind of balancer as the `lb` service of docker-compose.yml, with the
# same proxy settings (deploy/nginx/proxy.conf). Its access log records which
# api process answered each request (upstream=127.0.0.1:PORT) in
# LOG_DIR/nginx-access.log; errors go to its standard error (see nginx_start).
# Everything it writes stays in CONF's folder and LOG_DIR: it runs without root.
nginx_write_config() {
    local conf="$1" listen="$2" log_dir="$3" dir port
    shift 3
    [[ $# -ge 1 ]] || die "nginx_write_config: no upstream port"
    dir="$(dirname "$conf")"
    mkdir -p "$dir/tmp" "$log_dir"
    {
        printf '# Written by scripts/lib/nginx.sh (nginx_write_config) at every start: do not edit.\n'
        printf 'daemon off;\nworker_processes 1;\n'
        printf 'pid %s/nginx.pid;\n' "$dir"
        printf 'error_log stderr warn;\n'
        printf 'events {\n    worker_connections 1024;\n}\n'
        printf 'http {\n'
        local t
        for t in client_body proxy fastcgi uwsgi scgi; do
            printf '    %s_temp_path %s/tmp/%s;\n' "$t" "$dir" "$t"
        done
        cat <<'NGINX'
    log_format orders_lb '$remote_addr [$time_local] "$request" $status $body_bytes_sent '
                         'upstream=$upstream_addr upstream_status=$upstream_status '
                         'request_time=$request_time';
    upstream api {
NGINX
        for port in "$@"; do
            printf '        server 127.0.0.1:%s;\n' "$port"
        done
        printf '    }\n'
        printf '    server {\n'
        printf '        listen %s;\n' "$listen"
        printf '        access_log %s/nginx-access.log orders_lb;\n' "$log_dir"
        printf '        location / {\n'
        printf '            proxy_pass http://api;\n'
        printf '            include %s/deploy/nginx/proxy.conf;\n' "$ROOT"
        printf '        }\n    }\n}\n'
    } >"$conf"
}

# nginx_start CONF PIDFILE LOGFILE: check CONF, then run nginx in the
# foreground of a background process (daemon off), detached from the terminal,
# its pid in PIDFILE and its errors in LOGFILE. The caller waits for it to
# answer.
nginx_start() {
    local conf="$1" pidfile="$2" logfile="$3"
    [[ -n "${NGINX_BIN:-}" ]] || die "nginx is not installed (run ensure_nginx_installed)"
    if ! "$NGINX_BIN" -t -q -c "$conf" >>"$logfile" 2>&1; then
        show_log_tail "$logfile"
        die "nginx rejects its configuration $conf"
    fi
    log "starting nginx (config: ${conf#"$ROOT"/})"
    setsid "$NGINX_BIN" -c "$conf" </dev/null >>"$logfile" 2>&1 &
    echo "$!" >"$pidfile"
    wait_exec "$!" "$NGINX_BIN"
}

# api_stop_all INST_DIR BIN_DIR: stop the nginx of INST_DIR (nginx.pid) and
# every api process recorded there: api.pid (a single api) and api-N.pid (the
# replicas behind nginx).
api_stop_all() {
    local inst="$1" bin_dir="$2" pidfile
    stop_pidfile nginx "$inst/nginx.pid" "$inst/nginx/nginx.conf" 10
    for pidfile in "$inst/api.pid" "$inst"/api-*.pid; do
        [[ -e "$pidfile" ]] || continue
        stop_pidfile "$(basename "$pidfile" .pid)" "$pidfile" "$bin_dir/api" 15
    done
}
