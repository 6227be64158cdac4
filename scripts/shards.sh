#!/usr/bin/env bash
# recsys over PL/Proxy on one machine: a coordinator and N shards (a power of two), each a cluster of its own
# on loopback (unix sockets in /tmp), as user postgres. Sourced by test/scaleout.sh and bench/scaleout_youshu.sh,
# or run:
#   bash scripts/shards.sh start N BASE_PORT     coordinator on BASE_PORT, shard i on BASE_PORT + 1 + i
#   bash scripts/shards.sh demo N BASE_PORT CUSTOMERS   start, then the demo shop split by user and prepared
#   bash scripts/shards.sh stop N BASE_PORT
# The coordinator's database is recsys_coord (recsys in schema recsys_local for the model store, the PL/Proxy
# functions of scaleout/coordinator.sql in public and recsys_proxy); shard i's is recsys_shard<i> (recsys in
# public). A user lives on shard hashtext(user_id::text) & (N - 1).
SHARDS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SHARDS_PGBIN=/usr/lib/postgresql/15/bin

shards_dir() { echo "/tmp/recsys-shards-$1"; }   # PORT

shards_cluster_start() { # PORT
    local dir; dir=$(shards_dir "$1")
    shards_cluster_stop "$1"
    rm -rf "$dir" && mkdir -p "$dir" && chown postgres:postgres "$dir" && chmod 700 "$dir"
    runuser -u postgres -- "$SHARDS_PGBIN/initdb" -D "$dir" -U postgres -A trust --no-sync >/dev/null || return 1
    cat >>"$dir/postgresql.conf" <<CONF
port = $1
listen_addresses = ''
unix_socket_directories = '/tmp'
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
    runuser -u postgres -- "$SHARDS_PGBIN/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start >/dev/null
}

shards_cluster_stop() { # PORT
    local dir; dir=$(shards_dir "$1")
    [ -f "$dir/postmaster.pid" ] && runuser -u postgres -- "$SHARDS_PGBIN/pg_ctl" -D "$dir" -m fast -w stop >/dev/null 2>&1
    return 0
}

# shards_start N BASE_PORT: every cluster, recsys on each, PL/Proxy and the proxy functions on the coordinator
shards_start() {
    local n=$1 base=$2 i opts=""
    if [ "$n" -lt 1 ] || [ $((n & (n - 1))) -ne 0 ]; then echo "shard count must be a power of two, got $n" >&2; return 2; fi
    for i in $(seq 0 $((n - 1))); do
        shards_cluster_start $((base + 1 + i)) || return 1
        psql -X -q -h /tmp -p $((base + 1 + i)) -U postgres -d postgres -c "CREATE DATABASE recsys_shard$i" || return 1
        psql -X -q -h /tmp -p $((base + 1 + i)) -U postgres -d "recsys_shard$i" -c "CREATE EXTENSION recsys" || return 1
        opts="$opts${opts:+, }p$i 'host=/tmp port=$((base + 1 + i)) dbname=recsys_shard$i'"
    done
    shards_cluster_start "$base" || return 1
    psql -X -q -h /tmp -p "$base" -U postgres -d postgres -c "CREATE DATABASE recsys_coord" || return 1
    psql -X -q -v ON_ERROR_STOP=1 -h /tmp -p "$base" -U postgres -d recsys_coord >/dev/null <<SQL || return 1
CREATE SCHEMA recsys_local;
CREATE EXTENSION recsys SCHEMA recsys_local;
CREATE EXTENSION plproxy;
CREATE SERVER recsys_shards FOREIGN DATA WRAPPER plproxy OPTIONS (connection_lifetime '1800', $opts);
CREATE USER MAPPING FOR PUBLIC SERVER recsys_shards OPTIONS (user 'postgres');
\i $SHARDS_ROOT/scaleout/coordinator.sql
SQL
}

shards_stop() { # N BASE_PORT
    local i
    for i in $(seq 0 $(($1 - 1))); do shards_cluster_stop $(($2 + 1 + i)); done
    shards_cluster_stop "$2"
}

# shards_demo N BASE_PORT CUSTOMERS: the demo shop on every shard, each keeping only the customers it owns
# (catalogue and bundles everywhere), prepared
shards_demo() {
    local n=$1 base=$2 customers=$3 i
    for i in $(seq 0 $((n - 1))); do
        psql -X -q -v ON_ERROR_STOP=1 -h /tmp -p $((base + 1 + i)) -U postgres -d "recsys_shard$i" >/dev/null <<SQL || return 1
SELECT recsys.demo_shop(customers => $customers);
DELETE FROM shop.bundle_orders WHERE (hashtext(customer_id::text) & $((n - 1))) <> $i;
DELETE FROM shop.order_items WHERE order_id IN (SELECT order_id FROM shop.orders
                                                 WHERE customer_id IS NULL OR (hashtext(customer_id::text) & $((n - 1))) <> $i);
DELETE FROM shop.orders WHERE customer_id IS NULL OR (hashtext(customer_id::text) & $((n - 1))) <> $i;
DELETE FROM shop.customers WHERE (hashtext(customer_id::text) & $((n - 1))) <> $i;
SELECT count(*) FROM recsys.prepare();
SQL
    done
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -uo pipefail
    export PGHOST=/tmp PGUSER=postgres
    case "${1:-}" in
        start) shards_start "$2" "$3" ;;
        demo) shards_start "$2" "$3" && shards_demo "$2" "$3" "$4" ;;
        stop) shards_stop "$2" "$3" ;;
        *) echo "usage: $0 start N BASE_PORT | demo N BASE_PORT CUSTOMERS | stop N BASE_PORT" >&2; exit 2 ;;
    esac
fi
