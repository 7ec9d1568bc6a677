#!/usr/bin/env bash
# Runs an off-the-shelf OpenAPI-driven fuzzer (schemathesis, from PyPI) against
# a fresh `keydeck serve` on loopback, with the checks the hardening issue
# names: status codes, content types, response schemas and headers that the
# document describes, invalid requests rejected, and no server errors.
# Usage: scripts/schemathesis.sh [EXAMPLES_PER_OPERATION]   (default 50)
set -euo pipefail
cd "$(dirname "$0")/.."
command -v st >/dev/null || pip install -q schemathesis
cargo build -q
data=$(mktemp -d)
chmod 700 "$data"
port=18080
target/debug/keydeck serve --data-dir "$data" --listen "127.0.0.1:$port" --max-failed-auth 0 \
  >"$data/serve.log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; rm -rf "$data"' EXIT
for _ in $(seq 1 50); do
  curl -sf "127.0.0.1:$port/healthz" >/dev/null && break
  sleep 0.2
done
st run "http://127.0.0.1:$port/openapi.json" \
  -H "Authorization: Bearer $(cat "$data/admin-token")" \
  --checks status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance,negative_data_rejection,not_a_server_error \
  -n "${1:-50}" --phases examples,coverage,fuzzing
