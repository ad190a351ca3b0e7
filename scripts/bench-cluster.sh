#!/usr/bin/env bash
# The cluster figures of BENCHMARKS.md ("A cluster of nodes"): config/cluster's three nodes
# (release binary, its heartbeat and lease as shipped) on a fresh PostgreSQL database, then
#   - failover: starts through node 1 while node 2 is killed (SIGKILL), and again while it
#     is stopped (SIGTERM): how long starts fail;
#   - cost: one node alone, an `empty` and an `activity` run with the CPU seconds the node
#     and PostgreSQL spent per workflow (for the projection in docs/architecture.md).
# Usage: scripts/bench-cluster.sh [failover|cost|all]   (needs psql on 127.0.0.1:5432)
set -euo pipefail
cd "$(dirname "$0")/.."
what="${1:-all}"
cargo build --release --bin chronicle --bin chronicle-bench >&2
bin=target/release/chronicle
bench=target/release/chronicle-bench
work=$(mktemp -d /tmp/chronicle-bench-cluster.XXXXXX)
pids=()
db=""
cleanup() {
    for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
    [ -n "$db" ] && psql -q -h 127.0.0.1 -U postgres -d test -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

fresh_database() {
    cleanup
    pids=()
    db="chronicle_bench_$RANDOM$RANDOM"
    psql -q -h 127.0.0.1 -U postgres -d test -c "CREATE DATABASE $db" >/dev/null
    export CHRONICLE_PERSISTENCE_DSN="postgres://postgres@127.0.0.1:5432/$db"
    "$bin" schema migrate --config config/cluster/node-1.toml >/dev/null
}

# start_node N: node N of config/cluster on port 1730N; its pid in $node_pid.
start_node() {
    CHRONICLE_SERVER_PORT="1730$1" CHRONICLE_SERVER_LOG_LEVEL=${LOG_LEVEL:-warn} \
        "$bin" server start --config "config/cluster/node-$1.toml" >>"$work/node-$1.log" 2>&1 &
    node_pid=$!
    pids+=("$node_pid")
}

cpu_ticks() { # utime+stime of the pids given, and of their reaped children
    for pid in "$@"; do awk '{ print $14 + $15 + $16 + $17 }' "/proc/$pid/stat" 2>/dev/null || echo 0; done |
        awk '{ s += $1 } END { print s }'
}

postgres_pids() { pgrep -x postgres || pgrep -f "postgres:" || true; }

failover() {
    echo "| stop | starts failed before it | stop → last failed start | starts failed after (of all) | slowest start after |"
    echo "|---|---|---|---|---|"
    for signal in kill term; do
        fresh_database
        start_node 1; start_node 2; victim=$node_pid; start_node 3
        sleep 8 # all three members, shards settled
        "$bench" failover --address 127.0.0.1:17301 --pid "$victim" --signal "$signal" --rate 100 |
            sed "s/^| [A-Z]* |/| SIG${signal^^} |/" || true
    done
}

cost() {
    echo "| scenario | wf/s | p99 | node CPU ms/wf | PostgreSQL CPU ms/wf |"
    echo "|---|---|---|---|---|"
    local hz
    hz=$(getconf CLK_TCK)
    for scenario in empty activity; do
        fresh_database
        start_node 1
        sleep 4
        local before_node before_db
        before_node=$(cpu_ticks "$node_pid")
        # shellcheck disable=SC2046
        before_db=$(cpu_ticks $(postgres_pids))
        "$bench" run --scenario "$scenario" --workflows 4000 --address 127.0.0.1:17301 \
            >"$work/$scenario.txt" 2>"$work/$scenario.err"
        local after_node after_db
        after_node=$(cpu_ticks "$node_pid")
        # shellcheck disable=SC2046
        after_db=$(cpu_ticks $(postgres_pids))
        local rate p99
        rate=$(awk -F'|' '/workflows\/s \(steady\)/ { gsub(/ /, "", $3); print $3 }' "$work/$scenario.txt")
        p99=$(awk -F'|' '$2 ~ /^ latency p99 / { gsub(/^ +| +$/, "", $3); print $3 }' "$work/$scenario.txt")
        awk -v s="$scenario" -v r="$rate" -v p="$p99" -v n=$((after_node - before_node)) \
            -v d=$((after_db - before_db)) -v hz="$hz" \
            'BEGIN { printf "| %s | %s | %s | %.2f | %.2f |\n", s, r, p, n*1000/hz/4000, d*1000/hz/4000 }'
    done
}

case "$what" in
    failover) failover ;;
    cost) cost ;;
    all) failover; echo; cost ;;
    *) echo "usage: $0 [failover|cost|all]" >&2; exit 2 ;;
esac
