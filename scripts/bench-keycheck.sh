#!/usr/bin/env bash
# Key-check load figures: `keydeck serve` (release build) on SQLite and on
# PostgreSQL, with the key cache on and off, under `wrk -t2 -c64` on
# GET /healthz (the server's own floor) and on GET /v1/auth with a valid key
# in `Authorization: Bearer`. Prints req/s, p50 and p99 of each, and the
# ratio auth/healthz.
#
# It also prints the service's own CPU time per answer (user + system, from
# /proc/PID/stat around each run, over the requests wrk counted) for each,
# and their ratio healthz/auth: what the key check costs the service beside
# its floor, whatever else the shared machine runs. wrk shares the 2 cores,
# so req/s move with the load of the host; CPU per answer moves far less.
#
# The two are measured in turns, ROUNDS pairs (default 3) after a 1 s
# warm-up of each, and each pair gives a ratio: the row shows the median
# pair (its figures) and every pair's ratio. On a shared machine whose load
# moves, a ratio of two runs taken side by side says more than one of two
# runs taken far apart.
#
#     scripts/bench-keycheck.sh            # 10 s per run
#     scripts/bench-keycheck.sh 5s         # shorter runs
#     KEYDECK_BIN=target/release/keydeck scripts/bench-keycheck.sh   # no build
#     BACKENDS=postgres CACHE=true ROUNDS=5 scripts/bench-keycheck.sh 5s   # one row
#
# PostgreSQL: KEYDECK_TEST_POSTGRES_URL (default
# postgres://root@127.0.0.1:5432/postgres); a throwaway database is created
# and dropped. Installs wrk (apt-get, through sudo when not root) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10s}
ROUNDS=${ROUNDS:-3}
BACKENDS=${BACKENDS:-sqlite postgres}
CACHE=${CACHE:-true false}
PG_URL=${KEYDECK_TEST_POSTGRES_URL:-postgres://root@127.0.0.1:5432/postgres}

say() { printf '==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if ! command -v wrk >/dev/null; then
    say "installing wrk"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if [ -z "${KEYDECK_BIN:-}" ]; then
    say "cargo build --release"
    cargo build --release -q
    KEYDECK_BIN=target/release/keydeck
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The service's CPU time so far, in clock ticks (utime + stime).
cpu_ticks() {
    awk '{ print $14 + $15 }' "/proc/$server/stat"
}

# wrk's figures for a URL and the service's CPU per answer:
# "REQ_PER_S P50_MS P99_MS CPU_US_PER_ANSWER".
measure() {
    local url=$1; shift
    local out before after
    before=$(cpu_ticks)
    out=$(wrk -t2 -c64 -d"$DURATION" --latency "$@" "$url")
    after=$(cpu_ticks)
    if grep -q 'Non-2xx' <<<"$out"; then
        printf 'bench-keycheck.sh: errors from %s:\n%s\n' "$url" "$out" >&2
        exit 1
    fi
    awk -v ticks=$((after - before)) -v hz="$(getconf CLK_TCK)" '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
            return v
        }
        $2 == "requests" && $3 == "in" { requests = $1 }
        $1 == "Requests/sec:" { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        END { printf "%.0f %.2f %.2f %.1f\n", rps, p50, p99, ticks / hz * 1e6 / requests }
    ' <<<"$out"
}

server=""
data=""
db=""
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null || true
    [ -n "$data" ] && rm -rf "$data"
    [ -n "$db" ] && psql -q "$PG_URL" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true
    server="" data="" db=""
}
trap cleanup EXIT

# One row: backend (sqlite|postgres), cache (true|false).
run() {
    local backend=$1 cache=$2 port url args=()
    data=$(mktemp -d)
    chmod 700 "$data"
    if [ "$backend" = postgres ]; then
        db="kd_bench_$$_$cache"
        psql -q "$PG_URL" -c "CREATE DATABASE $db" >/dev/null
        args=(--database-url "${PG_URL%/*}/$db")
    fi
    port=$(free_port)
    RUST_LOG=warn "$KEYDECK_BIN" serve --data-dir "$data" --listen "127.0.0.1:$port" \
        --max-failed-auth 0 --key-cache "$cache" "${args[@]}" 2>"$data/serve.log" &
    server=$!
    url="http://127.0.0.1:$port"
    for _ in $(seq 1 100); do
        curl -sf "$url/healthz" >/dev/null && break
        sleep 0.1
    done
    local secret
    secret=$(curl -sf -X POST "$url/v1/api-keys" \
        -H "Authorization: Bearer $(cat "$data/admin-token")" \
        -H 'Content-Type: application/json' \
        -d '{"name": "bench", "scopes": ["sessions:read"]}' |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])')
    wrk -t2 -c64 -d1s "$url/healthz" >/dev/null
    wrk -t2 -c64 -d1s -H "Authorization: Bearer $secret" "$url/v1/auth" >/dev/null
    local pairs=() ratios=() cpu_ratios=() round health auth
    for round in $(seq 1 "$ROUNDS"); do
        health=$(measure "$url/healthz")
        auth=$(measure "$url/v1/auth" -H "Authorization: Bearer $secret")
        read -r h_rps _ _ h_cpu <<<"$health"
        read -r a_rps _ _ a_cpu <<<"$auth"
        local ratio cpu_ratio
        ratio=$(awk -v a="$a_rps" -v h="$h_rps" 'BEGIN { printf "%.2f", a / h }')
        cpu_ratio=$(awk -v a="$a_cpu" -v h="$h_cpu" 'BEGIN { printf "%.2f", h / a }')
        pairs+=("$ratio $health $auth")
        ratios+=("$ratio")
        cpu_ratios+=("$cpu_ratio")
    done
    local median cpu_median
    median=$(printf '%s\n' "${pairs[@]}" | sort -n | sed -n "$(((ROUNDS + 1) / 2))p")
    cpu_median=$(printf '%s\n' "${cpu_ratios[@]}" | sort -n | sed -n "$(((ROUNDS + 1) / 2))p")
    read -r ratio h_rps h_p50 h_p99 h_cpu a_rps a_p50 a_p99 a_cpu <<<"$median"
    printf '%-9s %-5s | healthz %7s req/s p50 %5s ms p99 %5s ms %5s us CPU | auth %7s req/s p50 %5s ms p99 %5s ms %5s us CPU | ratio %s (pairs: %s) | CPU ratio %s (pairs: %s)\n' \
        "$backend" "$cache" "$h_rps" "$h_p50" "$h_p99" "$h_cpu" "$a_rps" "$a_p50" "$a_p99" "$a_cpu" \
        "$ratio" "${ratios[*]}" "$cpu_median" "${cpu_ratios[*]}"
    cleanup
}

say "wrk -t2 -c64 -d$DURATION on $(nproc) cores, $ROUNDS pairs each; backend, key cache on/off"
for backend in $BACKENDS; do
    for cache in $CACHE; do
        run "$backend" "$cache"
    done
done
