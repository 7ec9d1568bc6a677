#!/usr/bin/env bash
# The gateway path: requests/s through one nginx worker running the shipped
# example (assets/deploy/nginx-auth-request.conf, only its addresses and ports
# changed), with `auth_request` to:
#
#   keydeck     `keydeck serve` (release build, SQLite) checking a good key;
#   trivial     a backend answering 200 with an empty body (a second nginx,
#               one worker, `return 200;`): the best any auth service can do;
#   trivial+100 the same backend answering 200 with a 100-byte body, which
#               nginx cannot keep the connection of (what /v1/auth did before).
#
# The protected app is a third nginx (one worker, `return 200 "ok"`), the
# same in every run. Prints req/s, p50/p99 latency, the auth connections left in
# TIME_WAIT after each run (one per check when the upstream connection is not
# kept alive), and the ratio keydeck ÷ trivial (issue 19's target: >= 0.8).
#
#     scripts/gateway-bench.sh              # 10 s per run
#     scripts/gateway-bench.sh 5s           # shorter runs
#     KEYDECK_BIN=target/release/keydeck scripts/gateway-bench.sh   # no build
#
# Needs nginx with http_auth_request_module and wrk: installed with apt-get
# (through sudo when not root) if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${1:-10s}
CONNECTIONS=${GATEWAY_BENCH_CONNECTIONS:-32}

say() { printf '==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

NGINX=$(PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v nginx || true)
if [ -z "$NGINX" ] || ! command -v wrk >/dev/null; then
    say "installing nginx-light and wrk"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx-light wrk >/dev/null
    NGINX=$(PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v nginx)
fi
if [ -z "${KEYDECK_BIN:-}" ]; then
    say "cargo build --release"
    cargo build --release -q --bin keydeck
    KEYDECK_BIN=target/release/keydeck
fi

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

work=$(mktemp -d)
chmod 755 "$work" # nginx's worker user reads its files when run as root
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# nginx in the foreground with one worker: `start_nginx NAME` serves
# $work/NAME/site.conf, everything it writes under $work/NAME.
start_nginx() {
    local dir=$work/$1
    cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/client_body_temp;
    proxy_temp_path $dir/proxy_temp;
    fastcgi_temp_path $dir/fastcgi_temp;
    uwsgi_temp_path $dir/uwsgi_temp;
    scgi_temp_path $dir/scgi_temp;
    include $dir/site.conf;
}
EOF
    "$NGINX" -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" &
    pids+=($!)
}

wait_for() {
    for _ in $(seq 1 100); do
        curl -s -o /dev/null "$1" && return 0
        sleep 0.1
    done
    echo "gateway-bench.sh: $1 does not answer" >&2
    exit 1
}

# --- the backends: the trivial auth answers, and the app (its own process) --
mkdir -p "$work/trivial" "$work/app"
empty_port=$(free_port) body_port=$(free_port) app_port=$(free_port)
body100=$(printf '{"key_id":"key_0123456789abcdefghij","org_id":"org_0123456789abcdefghij","scopes":["resources:read"]}')
cat >"$work/trivial/site.conf" <<EOF
server { listen 127.0.0.1:$empty_port; keepalive_requests 1000000; location / { return 200; } }
server { listen 127.0.0.1:$body_port; keepalive_requests 1000000; default_type application/json; location / { return 200 '${body100}'; } }
EOF
cat >"$work/app/site.conf" <<EOF
server { listen 127.0.0.1:$app_port; keepalive_requests 1000000; location / { return 200 "ok\n"; } }
EOF
start_nginx trivial
start_nginx app
wait_for "http://127.0.0.1:$empty_port/"
wait_for "http://127.0.0.1:$app_port/"

# --- keydeck -----------------------------------------------------------------
mkdir -m 700 "$work/keydeck"
keydeck_port=$(free_port)
RUST_LOG=warn "$KEYDECK_BIN" serve --data-dir "$work/keydeck" --listen "127.0.0.1:$keydeck_port" \
    --trusted-proxy 127.0.0.1 2>"$work/keydeck/serve.log" &
pids+=($!)
wait_for "http://127.0.0.1:$keydeck_port/healthz"
secret=$(curl -sf -X POST "http://127.0.0.1:$keydeck_port/v1/api-keys" \
    -H "Authorization: Bearer $(cat "$work/keydeck/admin-token")" \
    -H 'Content-Type: application/json' \
    -d '{"name": "gateway bench", "scopes": ["resources:read"]}' |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])')

# --- one run: the shipped example with its auth upstream at $1 ---------------
# Prints "REQ_PER_S P50_MS P99_MS TIME_WAIT".
measure() {
    local auth_port=$1 name=gateway_$1 port out
    port=$(free_port)
    mkdir -p "$work/$name"
    sed -e "s/server 127.0.0.1:8080;/server 127.0.0.1:$auth_port;/" \
        -e "s/server 127.0.0.1:3000;/server 127.0.0.1:$app_port;/" \
        -e "s/listen 80;/listen 127.0.0.1:$port;/" \
        -e "s/listen \[::\]:80;//" \
        assets/deploy/nginx-auth-request.conf >"$work/$name/site.conf"
    start_nginx "$name"
    local nginx_pid=${pids[-1]}
    wait_for "http://127.0.0.1:$port/healthz"
    local status
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $secret" \
        "http://127.0.0.1:$port/dashboard")
    if [ "$status" != 200 ]; then
        echo "gateway-bench.sh: a check through nginx to :$auth_port answered $status" >&2
        cat "$work/$name/error.log" >&2
        exit 1
    fi
    sleep 1
    out=$(wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency \
        -H "Authorization: Bearer $secret" "http://127.0.0.1:$port/dashboard")
    if grep -q 'Non-2xx\|Socket errors' <<<"$out"; then
        printf 'gateway-bench.sh: errors through nginx to :%s:\n%s\n' "$auth_port" "$out" >&2
        exit 1
    fi
    local time_wait
    time_wait=$(ss -Htan state time-wait "( dport = :$auth_port )" | wc -l)
    kill "$nginx_pid"
    wait "$nginx_pid" 2>/dev/null || true
    awk -v tw="$time_wait" '
        function ms(v) {
            if (v ~ /us$/) return substr(v, 1, length(v) - 2) / 1000
            if (v ~ /ms$/) return substr(v, 1, length(v) - 2) + 0
            if (v ~ /s$/) return substr(v, 1, length(v) - 1) * 1000
            return v
        }
        $1 == "Requests/sec:" { rps = $2 }
        $1 == "50%" { p50 = ms($2) }
        $1 == "99%" { p99 = ms($2) }
        END { printf "%.0f %.2f %.2f %d\n", rps, p50, p99, tw }
    ' <<<"$out"
}

row() {
    read -r rps p50 p99 tw <<<"$2"
    printf '%-12s %8s req/s   p50 %6s ms   p99 %6s ms   auth connections in TIME_WAIT %6s\n' \
        "$1" "$rps" "$p50" "$p99" "$tw"
}

say "wrk -t1 -c$CONNECTIONS -d$DURATION through one nginx worker (auth_request, keepalive 64), $(nproc) cores"
trivial=$(measure "$empty_port")
row trivial "$trivial"
keydeck=$(measure "$keydeck_port")
row keydeck "$keydeck"
with_body=$(measure "$body_port")
row trivial+100 "$with_body"
printf 'ratio keydeck / trivial: %s (target >= 0.80)\n' \
    "$(awk -v k="${keydeck%% *}" -v t="${trivial%% *}" 'BEGIN { printf "%.2f", k / t }')"
