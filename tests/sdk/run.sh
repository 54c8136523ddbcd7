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
HARNESS_NAME=sdk-test
. "$REPO/tests/lib/harness.sh"
harness_binary "$BIN"
harness_venv "${SDK_VENV:-$REPO/.venv-sdk}" "${SDK_PYTHON:-python3}" 10 \
    "$SCRIPT_DIR/requirements.txt"
# A key given from outside need not be in initial-credentials.
[ -n "${SDK_TEST_API_KEY:-}" ] && HARNESS_NEED_CREDENTIALS=0
harness_start "${SDK_TEST_KEEP_TMP:-0}" "${SDK_TEST_STARTUP_TIMEOUT:-60}"

if [ -z "${SDK_TEST_API_KEY:-}" ]; then
    SDK_TEST_API_KEY="$(harness_cred STARDAG_API_KEY)"
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
