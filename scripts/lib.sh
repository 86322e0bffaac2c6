# shellcheck shell=bash
#
# Entry point of the project's shell library: sets the paths and versions
# below, then sources scripts/lib/*.sh (one file per concern). Source it,
# do not execute it:
#
#     # shellcheck source=scripts/lib.sh
#     source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# It provides:
#   * ROOT                     absolute path of the repository root
#   * log / warn / die         logging helpers (everything goes to stderr)
#   * ensure_*_installed       install Postgres, NATS Streaming, nats-server,
#                              vegeta, curl, nginx, Chromium, node when they
#                              are missing (fast no-op otherwise)
#   * ensure_python_venv       Python tools, pinned, in a venv under .local/tools/
#   * npm_install_locked       a folder's node packages, as its package-lock.json pins them
#   * ensure_cargo / build_debug_bins
#                              the debug binaries of the workspace, in BIN_DIR
#   * pg_start / pg_stop       a private PostgreSQL server per "instance"
#   * stan_start / stan_stop   a private NATS Streaming server per "instance"
#   * jetstream_start / jetstream_stop
#                              a private nats-server with JetStream per instance
#   * stan_cluster_start / stan_cluster_stop,
#     jetstream_cluster_start / jetstream_cluster_stop
#                              a three-node cluster of either broker, as an
#                              instance of its own, up once it has a leader
#   * pg_setup_service_db      roles and database used by the services
#   * nginx_write_config / nginx_start
#                              a local nginx balancing over several api processes
#   * api_stop_all             stop that nginx and every api process of an instance
#   * spawn_detached / stop_pidfile
#                              start a background server, with a pid file;
#                              stop a process recorded in a pid file
#   * instance_start_clean     a fresh instance, stopped on exit and removed
#                              after a success
#   * proc_start / proc_wait_ready / wait_migrated
#                              the services of an instance, from BIN_DIR
#
# An "instance" (e.g. `dev`, `test`) is a folder `$ROOT/.local/NAME/` holding
# the data, sockets, logs and pid files of one set of servers, so that several
# sets can run side by side on different ports.

# Guard against double sourcing.
if [[ -n "${__ORDERS_LIB_SH:-}" ]]; then
    return 0
fi
__ORDERS_LIB_SH=1

# ---------------------------------------------------------------------------
# Paths and versions
# ---------------------------------------------------------------------------

# Repository root, derived from this file's own location (scripts/lib.sh).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
export ROOT

# The debug binaries of the workspace (`cargo build --bins`).
BIN_DIR="$ROOT/target/debug"

# Pinned versions of the Go tools we build from source.
STAN_MODULE="github.com/nats-io/nats-streaming-server@v0.25.6"
VEGETA_MODULE="github.com/tsenart/vegeta/v12@v12.13.0"
NATS_SERVER_MODULE="github.com/nats-io/nats-server/v2@v2.15.2"

# NATS Streaming cluster id shared by the servers and their clients.
STAN_CLUSTER_ID="${STAN_CLUSTER_ID:-test-cluster}"

# ---------------------------------------------------------------------------
# The parts, one file per concern, in dependency order
# ---------------------------------------------------------------------------

# shellcheck source=scripts/lib/log.sh
source "$ROOT/scripts/lib/log.sh"
# shellcheck source=scripts/lib/process.sh
source "$ROOT/scripts/lib/process.sh"
# shellcheck source=scripts/lib/install.sh
source "$ROOT/scripts/lib/install.sh"
# shellcheck source=scripts/lib/postgres.sh
source "$ROOT/scripts/lib/postgres.sh"
# shellcheck source=scripts/lib/cluster.sh
source "$ROOT/scripts/lib/cluster.sh"
# shellcheck source=scripts/lib/stan.sh
source "$ROOT/scripts/lib/stan.sh"
# shellcheck source=scripts/lib/jetstream.sh
source "$ROOT/scripts/lib/jetstream.sh"
# shellcheck source=scripts/lib/nginx.sh
source "$ROOT/scripts/lib/nginx.sh"
# shellcheck source=scripts/lib/services.sh
source "$ROOT/scripts/lib/services.sh"
