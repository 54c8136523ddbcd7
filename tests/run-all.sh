#!/usr/bin/env bash
# The whole test suite: the Rust unit and integration tests (release build, so the
# binary the SDK test drives is the one that ships), then the real stardag SDK against
# that binary. Extra arguments go to the SDK's pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo test --release --locked
bash tests/sdk/run.sh target/release/stardag-server "$@"
