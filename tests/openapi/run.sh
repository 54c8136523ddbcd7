#!/usr/bin/env bash
# The OpenAPI document: valid against the OpenAPI 3.1 schema (openapi-spec-validator)
# and real answers of the release binary match their documented schemas (jsonschema).
# Usage: tests/openapi/run.sh [PATH_TO_BINARY]   (default target/release/stardag-server)
# OPENAPI_VENV: venv to create/reuse (default <repo>/.venv-openapi).
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$DIR/../.." && pwd)"
BIN="${1:-$REPO/target/release/stardag-server}"
VENV="${OPENAPI_VENV:-$REPO/.venv-openapi}"
REQ="$DIR/requirements.txt"

stamp="$VENV/.requirements.sha256"
want="$(sha256sum "$REQ" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
    rm -rf "$VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
    echo "$want" > "$stamp"
fi

TMP="$(mktemp -d "${TMPDIR:-/tmp}/openapi-test.XXXXXX")"
PID=""
cleanup() {
    if [ -n "$PID" ]; then kill -TERM "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true; fi
    rm -rf "$TMP"
}
trap cleanup EXIT
PORT="$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$TMP/data" </dev/null >"$TMP/server.log" 2>&1 &
PID=$!
for _ in $(seq 1 300); do
    grep -qs STARDAG_API_KEY= "$TMP/data/initial-credentials" && break
    sleep 0.1
done
KEY="$(. "$TMP/data/initial-credentials" && printf '%s' "$STARDAG_API_KEY")"
"$VENV/bin/python" "$DIR/check.py" "http://127.0.0.1:$PORT" "$KEY" || {
    tail -n 50 "$TMP/server.log" >&2
    exit 1
}
