#!/usr/bin/env bash
# The whole test suite: the Rust unit and integration tests (release build, so the
# binary the SDK test drives is the one that ships), then the real stardag SDK against
# that binary (stardag 0.1.0 on /api/v1, then stardag 0.28.0 on /api/v2), then the web
# UI in a real browser (Debian's chromium + playwright; both SDKs again, through the
# UI). Extra arguments go to the 0.1.0 SDK's pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --release --locked
bash tests/openapi/run.sh target/release/stardag-server
bash tests/sdk/run.sh target/release/stardag-server "$@"
bash tests/sdk_v2/run.sh target/release/stardag-server
bash tests/ui_browser/run.sh target/release/stardag-server
