#!/usr/bin/env bash
# Regenerates assets/screenshot.png, the picture of keydeck's main screen at the
# top of the README, from a real terminal capture (with its colours).
#
# What it does: builds keydeck (`cargo build`), seeds 12 demo keys into a
# throwaway data directory, runs the terminal UI inside a detached tmux at a
# fixed size (on its own tmux socket, so a tmux you are running is never
# touched), waits until the key table is drawn, captures the screen with its
# ANSI colour escapes, quits the UI, cleans up, and renders the capture with
# scripts/ansi_to_png.py.
#
# Run it from anywhere:
#
#     scripts/screenshot.sh                     # build, then write assets/screenshot.png
#     KEYDECK_BIN=/path/to/keydeck scripts/screenshot.sh   # use this binary, no build
#     scripts/screenshot.sh /tmp/shot.png       # write somewhere else
#
# Installs what it needs when missing: tmux and fonts-dejavu-core (apt-get,
# through sudo when not root) and Pillow (pip; falls back to a virtualenv in
# target/screenshot-venv where the system Python refuses pip installs).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/assets/screenshot.png}
COLS=110
ROWS=24
SOCKET=keydeck-shot          # tmux -L: a tmux server of our own
FONT_DIR=/usr/share/fonts/truetype/dejavu
TIMEOUT=60                   # seconds to wait for the UI to draw its table
# The capture must be in colour, the way a user sees it.
unset NO_COLOR
export TERM=xterm-256color

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'screenshot.sh: %s\n' "$*" >&2; exit 1; }

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
apt_install() {
    say "installing $*"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# --- tools ----------------------------------------------------------------

command -v tmux >/dev/null || apt_install tmux
if [ ! -f "$FONT_DIR/DejaVuSansMono.ttf" ] || [ ! -f "$FONT_DIR/DejaVuSansMono-Bold.ttf" ]; then
    apt_install fonts-dejavu-core
fi

PYTHON=python3
VENV=$ROOT/target/screenshot-venv
if ! python3 -c 'import PIL' 2>/dev/null; then
    if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c 'import PIL' 2>/dev/null; then
        PYTHON=$VENV/bin/python
    elif say "installing Pillow" && python3 -m pip install --quiet pillow 2>/dev/null; then
        :
    else
        say "pip refused a system install; using a virtualenv in $VENV"
        python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet pillow
        PYTHON=$VENV/bin/python
    fi
fi

if [ -n "${KEYDECK_BIN:-}" ]; then
    BIN=$(command -v "$KEYDECK_BIN") || die "KEYDECK_BIN=$KEYDECK_BIN is not an executable"
else
    say "cargo build"
    (cd "$ROOT" && cargo build)
    BIN=$ROOT/target/debug/keydeck
fi
BIN=$(realpath "$BIN")   # the UI runs in another directory

# --- a throwaway data directory with demo keys -------------------------------

WORK=$(mktemp -d "${TMPDIR:-/tmp}/keydeck-shot.XXXXXX")
tmuxx() { tmux -L "$SOCKET" -f "$WORK/tmux.conf" "$@"; }
cleanup() {
    tmuxx kill-server 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

# The UI shows its data directory in the title line: a short relative name
# ("local · demo") reads better there than a random temp path.
DATA=demo
say "seeding 12 demo keys"
mkdir "$WORK/$DATA"
(cd "$WORK" && "$BIN" --data-dir "$DATA" admin seed --org default --count 12 >/dev/null)

# --- run the UI in tmux and capture it ----------------------------------------

cat >"$WORK/tmux.conf" <<'EOF'
set -g status off
set -g remain-on-exit on
EOF
tmuxx kill-server 2>/dev/null || true   # a leftover from an interrupted run
say "starting the UI in tmux (${COLS}x${ROWS})"
tmuxx new-session -d -s shot -x "$COLS" -y "$ROWS" -c "$WORK" \
    env -u NO_COLOR TERM=xterm-256color "$BIN" --data-dir "$DATA"

pane_dead() { [ "$(tmuxx display-message -p -t shot '#{pane_dead}')" = 1 ]; }
# The table is drawn when its header and the first and last seeded keys show.
table_drawn() {
    local screen
    screen=$(tmuxx capture-pane -p -t shot)
    grep -q 'Key Prefix' <<<"$screen" &&
        grep -qF 'CI/CD Pipeline #1 ' <<<"$screen" &&
        grep -qF 'Billing worker #12' <<<"$screen"
}

deadline=$((SECONDS + TIMEOUT))
until table_drawn; do
    if pane_dead; then
        tmuxx capture-pane -p -t shot >&2
        die "keydeck exited before drawing its table (screen above)"
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        tmuxx capture-pane -p -t shot >&2
        die "no key table after ${TIMEOUT}s (screen above)"
    fi
    sleep 0.1
done

# Take the capture once two in a row agree, so no half-drawn frame is kept.
capture=$(tmuxx capture-pane -e -p -t shot)
while sleep 0.2; previous=$capture; capture=$(tmuxx capture-pane -e -p -t shot); [ "$capture" != "$previous" ]; do
    [ "$SECONDS" -lt "$deadline" ] || die "the screen never settled"
done
printf '%s\n' "$capture" >"$WORK/screen.ansi"

# Quit the UI and let the embedded service stop before its data is removed.
tmuxx send-keys -t shot q
for _ in $(seq 50); do pane_dead && break; sleep 0.1; done

# --- render ----------------------------------------------------------------------

mkdir -p "$(dirname "$OUT")"
"$PYTHON" "$ROOT/scripts/ansi_to_png.py" "$WORK/screen.ansi" "$OUT" \
    --cols "$COLS" --rows "$ROWS" --font-size 16 --title keydeck
