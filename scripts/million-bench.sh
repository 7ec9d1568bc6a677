#!/usr/bin/env bash
# A million keys (issue 19): on each backend, in a temp data dir (SQLite) and
# a fresh database (PostgreSQL), with the release build:
#
#   seed     `keydeck admin seed --count N`: wall time and peak RSS
#            (/usr/bin/time -v);
#   ui       `cargo bench --bench ui_pty` on that data (benches/ui_pty/
#            million.rs): the counts the service answers, the memory one SSH
#            UI session adds to `keydeck serve --ssh-listen` (4 sessions),
#            then the UI in a 120×40 PTY (SQLite: embedded; PostgreSQL:
#            `--url` on `keydeck serve`): first frame with rows, summary line
#            and tab counts correct, key → frame for j, PgDn, G, a tab switch
#            and a sort change, filter keystroke → filtered rows (medians of
#            20), the UI's memory; every wait gives up after
#            MILLION_BENCH_UI_LIMIT seconds (default 60; a key's after
#            MILLION_BENCH_KEY_LIMIT, default 10) and says so;
#   list     4 concurrent `keydeck keys list --json` against `keydeck serve`
#            on that data: each one's wall time, keys listed and exit code,
#            any 503 (in its stderr), and the service's peak RSS (VmHWM).
#
#     scripts/million-bench.sh                   # 1 000 000 keys, both backends
#     scripts/million-bench.sh 100000            # fewer keys
#     MILLION_BENCH_BACKENDS=sqlite scripts/million-bench.sh
#     MILLION_BENCH_LIST=0 MILLION_BENCH_UI=0 scripts/million-bench.sh  # the seed only
#     KEYDECK_BIN=target/release/keydeck scripts/million-bench.sh   # no build
#     MILLION_BENCH_UI_BENCH=target/debug/deps/ui_pty-… scripts/million-bench.sh  # that UI bench build
#
# PostgreSQL: MILLION_BENCH_POSTGRES_URL (default
# postgres://root@127.0.0.1:5432/postgres) names a server where a database
# kd_bench_* is created and dropped again; needs psql. A listing gives up
# after MILLION_BENCH_LIST_TIMEOUT seconds (default 600).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${1:-1000000}
BACKENDS=${MILLION_BENCH_BACKENDS:-sqlite postgres}
PG_ADMIN=${MILLION_BENCH_POSTGRES_URL:-postgres://root@127.0.0.1:5432/postgres}
LIST=${MILLION_BENCH_LIST:-1}
LIST_TIMEOUT=${MILLION_BENCH_LIST_TIMEOUT:-600}
UI=${MILLION_BENCH_UI:-1}
UI_LIMIT=${MILLION_BENCH_UI_LIMIT:-60}
KEY_LIMIT=${MILLION_BENCH_KEY_LIMIT:-10}

say() { printf '==> %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

if [ ! -x /usr/bin/time ]; then
    say "installing time"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq time >/dev/null
fi
if [ -z "${KEYDECK_BIN:-}" ]; then
    say "cargo build --release"
    cargo build --release -q --bin keydeck
    KEYDECK_BIN=target/release/keydeck
fi
BIN=$(realpath "$KEYDECK_BIN")
UI_BENCH=${MILLION_BENCH_UI_BENCH:-}
if [ "$UI" = 1 ] && [ -z "$UI_BENCH" ]; then
    say "cargo bench --bench ui_pty --no-run"
    UI_BENCH=$(cargo bench --bench ui_pty --no-run 2>&1 | sed -nE 's/.*Executable .*\((.*ui_pty-[0-9a-f]+)\).*/\1/p' | tail -n 1)
    [ -x "$UI_BENCH" ] || { say "no ui_pty bench built"; exit 1; }
    UI_BENCH=$(realpath "$UI_BENCH")
fi

work=$(mktemp -d)
pids=()
dbs=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
    for db in "${dbs[@]}"; do psql -q "$PG_ADMIN" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT
# Nothing from the caller's own keydeck set-up.
export HOME=$work/home
mkdir -p "$HOME"
unset KEYDECK_URL KEYDECK_TOKEN KEYDECK_PROFILE KEYDECK_DATABASE_URL KEYDECK_DATA_DIR

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# `timed FILE CMD…`: runs CMD under /usr/bin/time -v, its report in FILE.
timed() {
    local report=$1
    shift
    /usr/bin/time -v -o "$report" "$@"
}
wall() { sed -nE 's/.*Elapsed \(wall clock\) time.*: //p' "$1"; }
cpu() { awk '/User time|System time/ { t += $NF } END { printf "%.1f s", t }' "$1"; }
peak_mib() { awk '/Maximum resident set size/ { printf "%.0f", $NF / 1024 }' "$1"; }

# `bench NAME DATA_DIR [DATABASE_URL]`
bench() {
    local name=$1 dir=$2 url=${3:-}
    local db_args=()
    [ -n "$url" ] && db_args=(--database-url "$url")
    say "$name: seeding $COUNT keys"
    timed "$work/$name-seed.time" "$BIN" --data-dir "$dir" admin "${db_args[@]}" seed --count "$COUNT" >/dev/null
    printf '%-9s seed %s keys: %s wall, %s CPU, peak RSS %s MiB (load average %s)\n' \
        "$name" "$COUNT" "$(wall "$work/$name-seed.time")" "$(cpu "$work/$name-seed.time")" \
        "$(peak_mib "$work/$name-seed.time")" "$(cut -d' ' -f1 /proc/loadavg)"
    if [ "$UI" = 1 ]; then
        say "$name: the UI and SSH sessions (ui_pty)"
        KEYDECK_BENCH_DATA_DIR=$dir KEYDECK_BENCH_DATABASE_URL=$url KEYDECK_BENCH_BIN=$BIN \
            KEYDECK_BENCH_LIMIT=$UI_LIMIT KEYDECK_BENCH_KEY_LIMIT=$KEY_LIMIT \
            "$UI_BENCH" --bench || say "$name: the UI bench failed"
    fi
    [ "$LIST" = 1 ] || return 0

    local port
    port=$(free_port)
    "$BIN" --data-dir "$dir" serve --listen "127.0.0.1:$port" "${db_args[@]}" \
        >"$work/$name-serve.log" 2>&1 &
    local serve=$!
    pids+=("$serve")
    for _ in $(seq 1 600); do
        curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null
    local token
    token=$(cat "$dir/admin-token")
    say "$name: 4 concurrent keys list --json"
    local lists=()
    for i in 1 2 3 4; do
        KEYDECK_URL="http://127.0.0.1:$port" KEYDECK_TOKEN="$token" \
            /usr/bin/time -v -o "$work/$name-list$i.time" timeout "$LIST_TIMEOUT" \
            "$BIN" keys list --json >"$work/$name-list$i.json" 2>"$work/$name-list$i.err" &
        lists+=($!)
    done
    for i in 1 2 3 4; do
        local rc=0
        wait "${lists[$((i - 1))]}" || rc=$?
        local n
        n=$(jq length "$work/$name-list$i.json" 2>/dev/null || echo "not JSON")
        local unavailable
        unavailable=$(grep -c -E '503|not answering|unavailable|could not answer' "$work/$name-list$i.err" || true)
        printf '%-9s list %d: exit %s, %s keys, %s wall, client peak RSS %s MiB, 503s in stderr: %s\n' \
            "$name" "$i" "$rc" "$n" "$(wall "$work/$name-list$i.time" 2>/dev/null || echo '?')" \
            "$(peak_mib "$work/$name-list$i.time" 2>/dev/null || echo '?')" "$unavailable"
        [ "$rc" = 0 ] || printf '%-9s list %d said: %s\n' "$name" "$i" "$(tail -n 1 "$work/$name-list$i.err")"
        rm -f "$work/$name-list$i.json"
    done
    printf '%-9s service peak RSS (VmHWM): %s\n' "$name" \
        "$(awk '/VmHWM/ { printf "%.0f MiB", $2 / 1024 }' "/proc/$serve/status")"
    kill "$serve"
    wait "$serve" 2>/dev/null || true
}

for backend in $BACKENDS; do
    case $backend in
    sqlite) bench sqlite "$work/sqlite" ;;
    postgres)
        db="kd_bench_$(date +%s)_$$"
        psql -q "$PG_ADMIN" -c "CREATE DATABASE $db" >/dev/null
        dbs+=("$db")
        bench postgres "$work/postgres" "${PG_ADMIN%/*}/$db"
        ;;
    *) say "unknown backend $backend" && exit 1 ;;
    esac
done
