# Shared set-up for scripts/demo.sh and scripts/test.sh (sourced, not run).
# Runs as root on a fresh Debian 12: installs packages, builds, and manages a
# throwaway PostgreSQL 15 cluster owned by user postgres (it refuses root).
set -euo pipefail

RECSYS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PGBIN=/usr/lib/postgresql/15/bin
PACKAGES="postgresql-15 postgresql-server-dev-15 libopenblas-dev postgresql-15-pgtap pgtap postgresql-15-cron
 postgresql-15-plproxy libtap-parser-sourcehandler-pgtap-perl make gcc pkg-config gnuplot-nox"

log() { printf '== %s\n' "$*" >&2; }

install_deps() {
    if [ "$(id -u)" -ne 0 ]; then
        log "not root: skipping apt-get (install these yourself: $PACKAGES)"
        return
    fi
    log "installing Debian packages"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # shellcheck disable=SC2086
    apt-get install -y -qq --no-install-recommends $PACKAGES >/dev/null
}

build_install() {
    log "building and installing recsys"
    make -C "$RECSYS_ROOT" -s with_llvm=no ${RECSYS_WERROR:+RECSYS_WERROR=1} >/dev/null
    make -C "$RECSYS_ROOT" -s with_llvm=no install >/dev/null
}

# start_cluster PORT: a fresh cluster in /tmp with fsync off, trust auth,
# unix socket in /tmp; sets PGHOST/PGPORT/PGUSER for the caller.
start_cluster() {
    local port=$1
    PGDATA_DIR=/tmp/recsys-pg-$port
    stop_cluster_at "$PGDATA_DIR"
    rm -rf "$PGDATA_DIR"
    mkdir -p "$PGDATA_DIR" && chown postgres:postgres "$PGDATA_DIR" && chmod 700 "$PGDATA_DIR"
    log "starting a throwaway cluster on port $port ($PGDATA_DIR)"
    runuser -u postgres -- "$PGBIN/initdb" -D "$PGDATA_DIR" -U postgres -A trust --no-sync >/dev/null
    cat >>"$PGDATA_DIR/postgresql.conf" <<CONF
port = $port
listen_addresses = ''
unix_socket_directories = '/tmp'
fsync = off
synchronous_commit = off
full_page_writes = off
shared_preload_libraries = 'pg_cron'
cron.database_name = 'postgres'
cron.host = '/tmp'
max_worker_processes = 16
CONF
    runuser -u postgres -- "$PGBIN/pg_ctl" -D "$PGDATA_DIR" -l "$PGDATA_DIR/server.log" -w -t 60 start >/dev/null
    export PGHOST=/tmp PGPORT=$port PGUSER=postgres
}

stop_cluster_at() {
    local dir=$1
    if [ -f "$dir/postmaster.pid" ]; then
        runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1 || true
    fi
}

stop_cluster() { stop_cluster_at "${PGDATA_DIR:-/nonexistent}"; }
