#!/usr/bin/env bash
# Compatibility test: the real stardag==0.28.0 SDK (PyPI) and its CLI against the
# release binary's /api/v2 (contract: shared/spec/v2-registry.md, DECISIONS D33).
#
# Usage: tests/sdk_v2/run.sh [PATH_TO_BINARY] [extra pytest args...]
#   PATH_TO_BINARY  default: target/release/stardag-server (relative to the repo root)
#
# Environment:
#   SDK_V2_VENV              venv to create/reuse (default: <repo>/.venv-sdk-v2)
#   SDK_V2_PYTHON            interpreter for a new venv (default: python3, must be >= 3.11)
#   SDK_V2_KEEP_TMP=1        keep the temp dir (data dir, targets, home, server log)
#   SDK_V2_STARTUP_TIMEOUT   seconds to wait for /health and the credentials (default 60)
#
# Starts `BINARY serve --listen 127.0.0.1:<free port> --data-dir <tmp>/data`, waits for
# GET /health = 200 and <data>/initial-credentials, exports what SDK 0.28.0 reads
# (STARDAG_API_URL, STARDAG_API_KEY, STARDAG_TARGET_ROOTS, STARDAG_CODE_ID, a HOME of its
# own; every other STARDAG_*/MODAL_* variable is removed), runs pytest on tests/sdk_v2
# from inside the temp dir, stops the server and exits with pytest's code; on failure
# it prints the tail of the server log.
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd)"

BIN="${1:-target/release/stardag-server}"
[ $# -gt 0 ] && shift
case "$BIN" in /*) ;; *) BIN="$REPO/$BIN" ;; esac
if [ ! -x "$BIN" ]; then
    echo "sdk-v2-test: server binary not found or not executable: $BIN" >&2
    echo "sdk-v2-test: build it first: cargo build --release" >&2
    exit 2
fi

VENV="${SDK_V2_VENV:-$REPO/.venv-sdk-v2}"
PY="${SDK_V2_PYTHON:-python3}"
REQ="$SCRIPT_DIR/requirements.txt"
STARTUP_TIMEOUT="${SDK_V2_STARTUP_TIMEOUT:-60}"

log() { echo "sdk-v2-test: $*" >&2; }

# --- venv (rebuilt when requirements.txt changes) --------------------------------
req_hash="$(sha256sum "$REQ" | cut -d' ' -f1)"
stamp="$VENV/.sdk-v2-requirements.sha256"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$req_hash" ]; then
    if [ -x "$VENV/bin/python" ]; then
        log "requirements changed: recreating $VENV"
        rm -rf "$VENV"
    fi
    "$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' || {
        log "$PY is older than 3.11 (stardag 0.28.0 needs >= 3.11); set SDK_V2_PYTHON"
        exit 2
    }
    log "creating venv $VENV"
    "$PY" -m venv "$VENV"
    log "installing $REQ"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$REQ"
    echo "$req_hash" > "$stamp"
fi
VPY="$VENV/bin/python"
[ -x "$VENV/bin/stardag" ] || { log "no stardag CLI in $VENV/bin"; exit 2; }

# --- temp dir, server ------------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/sdk-v2-test.XXXXXX")"
DATA="$TMP/data"
SERVER_LOG="$TMP/server.log"
mkdir -p "$DATA" "$TMP/home" "$TMP/targets" "$TMP/work"
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
    if [ "${SDK_V2_KEEP_TMP:-0}" = "1" ]; then
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
        print("sdk-v2-test: server exited during start-up", file=sys.stderr)
        sys.exit(1)
    if not healthy:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                healthy = r.status == 200
        except Exception:
            pass
    if healthy and os.path.exists(creds) and "STARDAG_API_KEY=" in open(creds).read():
        sys.exit(0)
    time.sleep(0.1)
print(f"sdk-v2-test: no healthy server with credentials after {timeout:.0f} s "
      f"(health={healthy}, credentials file present={os.path.exists(creds)})", file=sys.stderr)
sys.exit(1)
EOF
then
    exit 1
fi
log "server is up at $URL (pid $SERVER_PID)"

# --- credentials ---------------------------------------------------------------------
# The file is shell-sourceable KEY=value lines (D4). Read each value in a subshell so
# nothing from it (STARDAG_WORKSPACE_ID, STARDAG_ENVIRONMENT_ID, ...) reaches the SDK.
cred() { (set -a; . "$DATA/initial-credentials" >/dev/null 2>&1; printf '%s' "${!1:-}"); }
SDK_TEST_API_KEY="$(cred STARDAG_API_KEY)"
SDK_TEST_ADMIN_EMAIL="$(cred STARDAG_ADMIN_EMAIL)"
SDK_TEST_ADMIN_PASSWORD="$(cred STARDAG_ADMIN_PASSWORD)"
SDK_TEST_WORKSPACE_ID="$(cred STARDAG_WORKSPACE_ID)"
SDK_TEST_ENVIRONMENT_ID="$(cred STARDAG_ENVIRONMENT_ID)"
if [ -z "$SDK_TEST_API_KEY" ]; then
    log "no STARDAG_API_KEY in $DATA/initial-credentials"
    exit 1
fi

# --- SDK environment -------------------------------------------------------------
# stardag 0.28.0 reads STARDAG_API_URL (STARDAG_REGISTRY_URL is its deprecated alias),
# STARDAG_API_KEY, STARDAG_TARGET_ROOTS (JSON; also STARDAG_TARGET_ROOTS__<KEY>),
# STARDAG_PROFILE / _WORKSPACE_ID / _ENVIRONMENT_ID / _API_TIMEOUT / _NO_REGISTRY,
# STARDAG_CODE_ID (the local deployment's code id; else the git SHA, else a random one
# per process, which would give every process a scope of its own), STARDAG_DEPLOYMENT_ID
# and the Modal worker's STARDAG_*/MODAL_* variables. Remove them all, then set ours.
for v in $(compgen -e); do
    case "$v" in STARDAG_*|MODAL_*) unset "$v" ;; esac
done
unset SDK_TEST_EXEC_LOG
export SDK_TEST_URL="$URL"
export SDK_TEST_API_KEY SDK_TEST_ADMIN_EMAIL SDK_TEST_ADMIN_PASSWORD
export SDK_TEST_WORKSPACE_ID SDK_TEST_ENVIRONMENT_ID
export SDK_TEST_CLI="$VENV/bin/stardag"
export STARDAG_API_URL="$URL"
export STARDAG_API_KEY="$SDK_TEST_API_KEY"
export STARDAG_TARGET_ROOTS="{\"default\": \"$TMP/targets\"}"
export STARDAG_CODE_ID="sdk-v2-compat-test"
# ~/.stardag (config.toml, credentials, token cache) of our own; the working directory
# has no .stardag/config.toml above it (the SDK looks for a project config upwards).
export HOME="$TMP/home"
export PYTHONDONTWRITEBYTECODE=1
export PYTHONUNBUFFERED=1

# pytest runs in $TMP/work: make test paths given relative to the caller absolute
# (tests/sdk_v2/test_cli.py, tests/sdk_v2/test_builds.py::test_diamond, ...).
ARGS=()
HAVE_PATH=0
for a in "$@"; do
    if [ "${a#-}" = "$a" ] && [ -e "${a%%::*}" ]; then
        a="$(cd "$(dirname "${a%%::*}")" && pwd)/$(basename "$a")"
        HAVE_PATH=1
    fi
    ARGS+=("$a")
done
[ "$HAVE_PATH" = 1 ] || ARGS=("$SCRIPT_DIR" ${ARGS[@]+"${ARGS[@]}"})

set +e
(cd "$TMP/work" && "$VPY" -m pytest -c "$SCRIPT_DIR/pytest.ini" --rootdir "$SCRIPT_DIR" "${ARGS[@]}")
RC=$?
set -e
if [ "$RC" -ne 0 ]; then
    log "pytest exited with $RC"
fi
exit "$RC"
