# Shared by the suites that drive the release binary from Python (tests/sdk/run.sh,
# tests/sdk_v2/run.sh): a pinned venv, the server on a free port with a temporary data
# dir, its initial credentials, and a cleanup that stops it and shows its log on failure.
#
# Source it after setting HARNESS_NAME (the log prefix); then call, in order:
#   harness_binary PATH                   → BIN (absolute, checked executable)
#   harness_venv VENV PYTHON MIN_MINOR REQUIREMENTS  → VPY (rebuilt when REQUIREMENTS change)
#   harness_start KEEP_TMP TIMEOUT        → TMP DATA URL SERVER_PID SERVER_LOG; traps EXIT
#   harness_cred NAME                     → prints one value of initial-credentials
# and set RC to the test command's exit code before exiting.

log() { echo "$HARNESS_NAME: $*" >&2; }

harness_binary() {
    BIN="$1"
    case "$BIN" in /*) ;; *) BIN="$REPO/$BIN" ;; esac
    if [ ! -x "$BIN" ]; then
        log "server binary not found or not executable: $BIN"
        log "build it first: cargo build --release"
        exit 2
    fi
}

harness_venv() {
    local venv="$1" py="$2" min_minor="$3" req="$4"
    local req_hash stamp="$venv/.requirements.sha256"
    req_hash="$(sha256sum "$req" | cut -d' ' -f1)"
    if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$req_hash" ]; then
        if [ -x "$venv/bin/python" ]; then
            log "requirements changed: recreating $venv"
            rm -rf "$venv"
        fi
        "$py" -c "import sys; sys.exit(0 if sys.version_info >= (3, $min_minor) else 1)" || {
            log "$py is older than 3.$min_minor; set the suite's PYTHON variable"
            exit 2
        }
        log "creating venv $venv"
        "$py" -m venv "$venv"
        log "installing $req"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$req"
        echo "$req_hash" > "$stamp"
    fi
    VPY="$venv/bin/python"
}

# Stops the server (SIGTERM, then SIGKILL after 10 s), prints the tail of its log when
# anything failed, and removes the temp dir unless asked to keep it.
harness_cleanup() {
    local status=$?
    if [ -n "${SERVER_PID:-}" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
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
    if [ "${RC:-1}" -ne 0 ] || [ "$status" -ne 0 ]; then
        if [ -f "${SERVER_LOG:-}" ]; then
            echo "----- server log ($SERVER_LOG, last 200 lines) -----" >&2
            tail -n 200 "$SERVER_LOG" >&2 || true
            echo "----- end of server log -----" >&2
        fi
    fi
    if [ "$HARNESS_KEEP_TMP" = "1" ]; then
        log "kept $TMP"
    else
        rm -rf "$TMP"
    fi
}

# Starts `BIN serve` and waits for GET /health = 200 and initial-credentials holding an
# API key (or only /health when HARNESS_NEED_CREDENTIALS=0); fails fast if it exits.
harness_start() {
    HARNESS_KEEP_TMP="$1"
    local timeout="$2"
    TMP="$(mktemp -d "${TMPDIR:-/tmp}/$HARNESS_NAME.XXXXXX")"
    DATA="$TMP/data"
    SERVER_LOG="$TMP/server.log"
    mkdir -p "$DATA" "$TMP/home" "$TMP/targets" "$TMP/work"
    SERVER_PID=""
    RC=1
    trap harness_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM

    local port
    port="$("$VPY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
    URL="http://127.0.0.1:$port"
    log "starting $BIN serve --listen 127.0.0.1:$port --data-dir $DATA"
    "$BIN" serve --listen "127.0.0.1:$port" --data-dir "$DATA" </dev/null >"$SERVER_LOG" 2>&1 &
    SERVER_PID=$!
    "$VPY" - "$URL" "$DATA/initial-credentials" "$SERVER_PID" "$timeout" \
        "${HARNESS_NEED_CREDENTIALS:-1}" "$HARNESS_NAME" <<'EOF' || exit 1
import os, sys, time, urllib.request
url, creds, pid, timeout, need_creds, name = sys.argv[1:7]
pid, timeout = int(pid), float(timeout)
deadline = time.monotonic() + timeout
healthy = False
while time.monotonic() < deadline:
    try:
        os.kill(pid, 0)
    except OSError:
        print(f"{name}: server exited during start-up", file=sys.stderr)
        sys.exit(1)
    if not healthy:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                healthy = r.status == 200
        except Exception:
            pass
    if healthy and (need_creds == "0" or
                    (os.path.exists(creds) and "STARDAG_API_KEY=" in open(creds).read())):
        sys.exit(0)
    time.sleep(0.1)
print(f"{name}: no healthy server with credentials after {timeout:.0f} s "
      f"(health={healthy}, credentials file present={os.path.exists(creds)})", file=sys.stderr)
sys.exit(1)
EOF
    log "server is up at $URL (pid $SERVER_PID)"
}

# The file is shell-sourceable KEY=value lines (D4). Each value is read in a subshell so
# nothing else from it (STARDAG_WORKSPACE_ID, ...) reaches the SDK's environment.
harness_cred() {
    (set -a; . "$DATA/initial-credentials" >/dev/null 2>&1; printf '%s' "${!1:-}")
}
