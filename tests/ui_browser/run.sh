#!/usr/bin/env bash
# The real-browser suite of the web UI (ui.md §8): Debian's chromium driven by the
# pinned PyPI playwright wheel (never `playwright install`), against the release
# binary, with the real stardag SDKs (0.1.0 and 0.28.0) for the end-to-end flows.
#
# Usage: tests/ui_browser/run.sh [PATH_TO_BINARY] [extra pytest args...]
#
# Environment:
#   UI_VENV             venv for playwright + pytest (default: <repo>/.venv-ui)
#   UI_TEST_CHROMIUM    browser binary (default: /usr/bin/chromium)
#   SDK_VENV, SDK_V2_VENV  the SDK venvs of tests/sdk and tests/sdk_v2 (made if missing)
#   UI_TEST_KEEP_TMP=1  keep the temp dir (data dir, server log)
# Screenshots: target/ui-artifacts/pages/*.png (always) and target/ui-artifacts/<test>-N.png
# plus .html (on failure).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$SCRIPT_DIR/../.." && pwd)"
BIN="${1:-target/release/stardag-server}"
[ $# -gt 0 ] && shift
HARNESS_NAME=ui-test
. "$REPO/tests/lib/harness.sh"
harness_binary "$BIN"
CHROMIUM="${UI_TEST_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] || { log "no chromium at $CHROMIUM (apt-get install chromium)"; exit 2; }

# The SDK venvs of tests/sdk and tests/sdk_v2 (made here if those suites have not run),
# then this suite's own.
harness_venv "${SDK_VENV:-$REPO/.venv-sdk}" python3 10 "$REPO/tests/sdk/requirements.txt"
SDK_V1_PY="$VPY"
harness_venv "${SDK_V2_VENV:-$REPO/.venv-sdk-v2}" python3 11 "$REPO/tests/sdk_v2/requirements.txt"
SDK_V2_PY="$VPY"
harness_venv "${UI_VENV:-$REPO/.venv-ui}" python3 9 "$SCRIPT_DIR/requirements.txt"

# Playwright speaks the CDP of its bundled Chromium's major; say when they differ.
"$VPY" - "$CHROMIUM" <<'PY' >&2
import json, pathlib, re, subprocess, sys, playwright
from importlib.metadata import version
browsers = json.loads((pathlib.Path(playwright.__file__).parent / "driver/package/browsers.json").read_text())
want = next(b["browserVersion"] for b in browsers["browsers"] if b["name"] == "chromium")
have = subprocess.run([sys.argv[1], "--version"], capture_output=True, text=True).stdout.strip()
print(f"ui-test: playwright {version('playwright')} (chromium {want}), system: {have}")
m = re.search(r"(\d+)\.", have)
if m and abs(int(m.group(1)) - int(want.split(".")[0])) > 1:
    print("ui-test: WARNING: chromium and playwright majors differ; bump playwright to the "
          "version whose browsers.json names the system chromium's major (ui.md §8.1)")
PY

# Live updates poll every 300 ms in this suite (ui.poll_ms), never through JS hacks.
export STARDAG_SERVER_UI__POLL_MS=300
# Local registration gives the settings tests a second user (test_settings.py).
export STARDAG_SERVER_AUTH__LOCAL_REGISTRATION=true
harness_start "${UI_TEST_KEEP_TMP:-0}" 60
UI_TEST_ADMIN_EMAIL="$(harness_cred STARDAG_ADMIN_EMAIL)"
UI_TEST_ADMIN_PASSWORD="$(harness_cred STARDAG_ADMIN_PASSWORD)"
UI_TEST_API_KEY="$(harness_cred STARDAG_API_KEY)"
export UI_TEST_URL="$URL"
export UI_TEST_ADMIN_EMAIL UI_TEST_ADMIN_PASSWORD UI_TEST_API_KEY
export UI_TEST_CHROMIUM="$CHROMIUM" UI_TEST_TMP="$TMP"
export UI_TEST_ARTIFACTS="$REPO/target/ui-artifacts"
export UI_TEST_SDK_V1_PYTHON="$SDK_V1_PY" UI_TEST_SDK_V2_PYTHON="$SDK_V2_PY"
export HOME="$TMP/home" PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
log "server at $URL; artifacts in $UI_TEST_ARTIFACTS"

set +e
(cd "$SCRIPT_DIR" && "$VPY" -m pytest "$SCRIPT_DIR" "$@")
RC=$?
set -e
exit "$RC"
