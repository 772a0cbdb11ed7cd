#!/usr/bin/env bash
# node busmq 3.1.0 beside busmq-rs on this machine, alternated in rounds: busmq-rs's bench
# (channel-rtt and paced-2k with their raw baselines, `--pin split`), then node busmq's channel
# ping-pong and paced queue against a redis-server of its own on cpu 0, node on cpu 1 (the same
# placement). Usage: compare.sh [ROUNDS]. Needs node and npm (the npm registry); not run by CI.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
rounds="${1:-3}"

(cd "$here" && npm ci --no-audit --no-fund --silent)
cargo build --release -q -p xtask --manifest-path "$root/Cargo.toml"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
taskset -c 0 redis-server --port "$port" --save "" --appendonly no --dir "$dir" \
    --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log"
trap 'kill "$(cat "$dir/redis.pid")" 2>/dev/null || true; rm -rf "$dir"' EXIT
until redis-cli -p "$port" ping >/dev/null 2>&1; do sleep 0.1; done

for round in $(seq 1 "$rounds"); do
    echo "== round $round, load $(cut -d' ' -f1 /proc/loadavg)"
    "$root/target/release/xtask" bench --only channel-rtt,paced-2k --pin split \
        --json "$dir/bench.json" 2>&1 \
        | grep -E '^(scenario |(baseline-pingpong|channel-rtt|baseline-paced-2k|paced-2k) )' || true
    (cd "$here" && taskset -c 1 node rtt.js "redis://127.0.0.1:$port" 10000 \
        && taskset -c 1 node paced.js "redis://127.0.0.1:$port" 2000 6)
done
