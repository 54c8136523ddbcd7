#!/usr/bin/env bash
# Compatibility test: the real stardag==0.1.0 SDK (PyPI) against the release binary.
#
# Usage: tests/sdk/run.sh [PATH_TO_BINARY] [extra pytest args...]
#   PATH_TO_BINARY  default: target/release/stardag-server (relative to the repo root)
#
# Environment:
#   SDK_VENV            venv to create/reuse (default: <repo>/.venv-sdk)
#   SDK_PYTHON          interpreter for a new venv (default: python3, must be >= 3.10)
#   SDK_TEST_SKIP_LOCKS=1   skip the global-lock tests
#   SDK_TEST_API_KEY    use this key instead of the one from initial-credentials
#   SDK_TEST_KEEP_TMP=1 keep the temp dir (data dir, targets, server log)
#   SDK_TEST_STARTUP_TIMEOUT  seconds to wait for /health (default 60)
#
# Starts `stardag-server serve --listen 127.0.0.1:<free port> --data-dir <tmp>`,
# waits for GET /health = 200 and <data_dir>/initial-credentials, exports the SDK's
# environment, runs pytest on tests/sdk, stops the server and exits with pytest's code.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd)"

BIN="${1:-target/release/stardag-server}"
[ $# -gt 0 ] && shift
case "$BIN" in /*) ;; *) BIN="$REPO/$BIN" ;; esac
if [ ! -x "$BIN" ]; then
    echo "sdk-test: server binary not found or not executable: $BIN" >&2
    echo "sdk-test: build it first: cargo build --release" >&2
    exit 2
fi

VENV="${SDK_VENV:-$REPO/.venv-sdk}"
PY="${SDK_PYTHON:-python3}"
REQ="$SCRIPT_DIR/requirements.txt"
STARTUP_TIMEOUT="${SDK_TEST_STARTUP_TIMEOUT:-60}"

log() { echo "sdk-test: $*" >&2; }

# --- venv ----------------------------------------------------------------------
req_hash="$(sha256sum "$REQ" | cut -d' ' -f1)"
stamp="$VENV/.sdk-requirements.sha256"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$req_hash" ]; then
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' || {
            log "$PY is older than 3.10 (stardag 0.1.0 needs >= 3.10); set SDK_PYTHON"
            exit 2
        }
        log "creating venv $VENV"
        "$PY" -m venv "$VENV"
    fi
    log "installing $REQ"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
    echo "$req_hash" > "$stamp"
fi
VPY="$VENV/bin/python"

# --- temp dir, server ----------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/sdk-test.XXXXXX")"
DATA="$TMP/data"
SERVER_LOG="$TMP/server.log"
mkdir -p "$DATA" "$TMP/home" "$TMP/targets"
SERVER_PID=""
RC=1

cleanup() {
    local status=$?
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 100); do
            kill -0 "$SERVER_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$SERVER_PID" 2>/dev/null; then
            log "server did not stop within 10 s after SIGTERM, killing it"
            kill -KILL "$SERVER_PID" 2>/dev/null || true
        fi
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$RC" -ne 0 ] || [ "$status" -ne 0 ]; then
        if [ -f "$SERVER_LOG" ]; then
            echo "----- server log ($SERVER_LOG, last 200 lines) -----" >&2
            tail -n 200 "$SERVER_LOG" >&2 || true
            echo "----- end of server log -----" >&2
        fi
    fi
    if [ "${SDK_TEST_KEEP_TMP:-0}" = "1" ]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$("$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
URL="http://127.0.0.1:$PORT"

log "starting $BIN serve --listen 127.0.0.1:$PORT --data-dir $DATA"
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" </dev/null >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!

# Poll /health and the credentials file; fail fast if the server exits.
if ! "$VPY" - "$URL" "$DATA/initial-credentials" "$SERVER_PID" "$STARTUP_TIMEOUT" <<'EOF'
import os, sys, time, urllib.request
url, creds, pid, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
deadline = time.monotonic() + timeout
healthy = False
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        print("sdk-test: server exited during start-up", file=sys.stderr)
        sys.exit(1)
    if not healthy:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                healthy = r.status == 200
        except Exception:
            pass
    if healthy and (os.environ.get("SDK_TEST_API_KEY") or
                    (os.path.exists(creds) and "STARDAG_API_KEY=" in open(creds).read())):
        sys.exit(0)
    time.sleep(0.1)
print(f"sdk-test: no healthy server with credentials after {timeout:.0f} s "
      f"(health={healthy}, credentials file present={os.path.exists(creds)})", file=sys.stderr)
sys.exit(1)
EOF
then
    exit 1
fi
log "server is up at $URL (pid $SERVER_PID)"

# --- API key -------------------------------------------------------------------
if [ -z "${SDK_TEST_API_KEY:-}" ]; then
    # shell-sourceable KEY=value lines (D4); read in a subshell, export nothing else
    SDK_TEST_API_KEY="$(set -a; . "$DATA/initial-credentials" >/dev/null 2>&1; printf '%s' "${STARDAG_API_KEY:-}")"
fi
if [ -z "$SDK_TEST_API_KEY" ]; then
    log "no STARDAG_API_KEY in $DATA/initial-credentials"
    exit 1
fi

# --- SDK environment -----------------------------------------------------------
# stardag 0.1.0 reads STARDAG_REGISTRY_URL (not STARDAG_API_URL) and STARDAG_API_KEY;
# SHORT_SHA would override COMMIT_HASH; a profile or user config must not interfere.
unset STARDAG_API_URL STARDAG_PROFILE STARDAG_WORKSPACE_ID STARDAG_ENVIRONMENT_ID \
      STARDAG_API_TIMEOUT SHORT_SHA SDK_TEST_EXEC_LOG
export SDK_TEST_URL="$URL"
export SDK_TEST_API_KEY
export STARDAG_REGISTRY_URL="$URL"
export STARDAG_API_KEY="$SDK_TEST_API_KEY"
export STARDAG_TARGET_ROOTS="{\"default\": \"$TMP/targets\"}"
export COMMIT_HASH="sdk-compat-test"
export HOME="$TMP/home"
export PYTHONDONTWRITEBYTECODE=1
export PYTHONUNBUFFERED=1

set +e
(cd "$TMP" && "$VPY" -m pytest "$SCRIPT_DIR" "$@")
RC=$?
set -e
if [ "$RC" -ne 0 ]; then
    log "pytest exited with $RC"
fi
exit "$RC"
