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
HARNESS_NAME=sdk-v2-test
. "$REPO/tests/lib/harness.sh"
harness_binary "$BIN"
harness_venv "${SDK_V2_VENV:-$REPO/.venv-sdk-v2}" "${SDK_V2_PYTHON:-python3}" 11 \
    "$SCRIPT_DIR/requirements.txt"
VENV="$(dirname "$(dirname "$VPY")")"
[ -x "$VENV/bin/stardag" ] || { log "no stardag CLI in $VENV/bin"; exit 2; }
harness_start "${SDK_V2_KEEP_TMP:-0}" "${SDK_V2_STARTUP_TIMEOUT:-60}"

SDK_TEST_API_KEY="$(harness_cred STARDAG_API_KEY)"
SDK_TEST_ADMIN_EMAIL="$(harness_cred STARDAG_ADMIN_EMAIL)"
SDK_TEST_ADMIN_PASSWORD="$(harness_cred STARDAG_ADMIN_PASSWORD)"
SDK_TEST_WORKSPACE_ID="$(harness_cred STARDAG_WORKSPACE_ID)"
SDK_TEST_ENVIRONMENT_ID="$(harness_cred STARDAG_ENVIRONMENT_ID)"
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
