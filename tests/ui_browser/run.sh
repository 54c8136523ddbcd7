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
case "$BIN" in /*) ;; *) BIN="$REPO/$BIN" ;; esac
[ -x "$BIN" ] || { echo "ui-test: no server binary at $BIN (cargo build --release)" >&2; exit 2; }
CHROMIUM="${UI_TEST_CHROMIUM:-/usr/bin/chromium}"
[ -x "$CHROMIUM" ] || { echo "ui-test: no chromium at $CHROMIUM (apt-get install chromium)" >&2; exit 2; }

log() { echo "ui-test: $*" >&2; }

# A venv per requirements file, rebuilt when the file changes.
venv() {
    local dir="$1" req="$2" hash stamp
    hash="$(sha256sum "$req" | cut -d' ' -f1)"
    stamp="$dir/.requirements.sha256"
    if [ ! -x "$dir/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$hash" ]; then
        [ -x "$dir/bin/python" ] || python3 -m venv "$dir"
        log "installing $req into $dir"
        "$dir/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
        echo "$hash" > "$stamp"
    fi
}
UI_VENV="${UI_VENV:-$REPO/.venv-ui}"
venv "$UI_VENV" "$SCRIPT_DIR/requirements.txt"
SDK_VENV="${SDK_VENV:-$REPO/.venv-sdk}"
SDK_V2_VENV="${SDK_V2_VENV:-$REPO/.venv-sdk-v2}"
[ -x "$SDK_VENV/bin/python" ] || venv "$SDK_VENV" "$REPO/tests/sdk/requirements.txt"
[ -x "$SDK_V2_VENV/bin/python" ] || venv "$SDK_V2_VENV" "$REPO/tests/sdk_v2/requirements.txt"
VPY="$UI_VENV/bin/python"

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

TMP="$(mktemp -d "${TMPDIR:-/tmp}/ui-test.XXXXXX")"
DATA="$TMP/data"
SERVER_LOG="$TMP/server.log"
mkdir -p "$DATA" "$TMP/home"
SERVER_PID=""
RC=1
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [ "$RC" -ne 0 ] && [ -f "$SERVER_LOG" ]; then
        echo "----- server log (last 100 lines) -----" >&2
        tail -n 100 "$SERVER_LOG" >&2 || true
    fi
    if [ "${UI_TEST_KEEP_TMP:-0}" = "1" ]; then log "kept $TMP"; else rm -rf "$TMP"; fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PORT="$("$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
URL="http://127.0.0.1:$PORT"
# Live updates poll every 300 ms in this suite (ui.poll_ms), never through JS hacks.
STARDAG_SERVER_UI__POLL_MS=300 "$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" \
    </dev/null >"$SERVER_LOG" 2>&1 &
SERVER_PID=$!
for _ in $(seq 1 600); do
    kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited during start-up"; exit 1; }
    if "$VPY" -c "import urllib.request,sys; urllib.request.urlopen('$URL/health', timeout=2)" 2>/dev/null \
        && grep -q '^STARDAG_API_KEY=' "$DATA/initial-credentials" 2>/dev/null; then
        break
    fi
    sleep 0.1
done
cred() { (set -a; . "$DATA/initial-credentials" >/dev/null 2>&1; eval "printf '%s' \"\${$1:-}\""); }
export UI_TEST_URL="$URL"
UI_TEST_ADMIN_EMAIL="$(cred STARDAG_ADMIN_EMAIL)"
UI_TEST_ADMIN_PASSWORD="$(cred STARDAG_ADMIN_PASSWORD)"
UI_TEST_API_KEY="$(cred STARDAG_API_KEY)"
export UI_TEST_ADMIN_EMAIL UI_TEST_ADMIN_PASSWORD UI_TEST_API_KEY
export UI_TEST_CHROMIUM="$CHROMIUM" UI_TEST_TMP="$TMP"
export UI_TEST_ARTIFACTS="$REPO/target/ui-artifacts"
export UI_TEST_SDK_V1_PYTHON="$SDK_VENV/bin/python" UI_TEST_SDK_V2_PYTHON="$SDK_V2_VENV/bin/python"
export HOME="$TMP/home" PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
log "server at $URL; artifacts in $UI_TEST_ARTIFACTS"

set +e
(cd "$SCRIPT_DIR" && "$VPY" -m pytest "$SCRIPT_DIR" "$@")
RC=$?
set -e
exit "$RC"
