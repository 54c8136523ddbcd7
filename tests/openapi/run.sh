#!/usr/bin/env bash
# The OpenAPI document: valid against the OpenAPI 3.1 schema (openapi-spec-validator)
# and real answers of the release binary match their documented schemas (jsonschema).
# Usage: tests/openapi/run.sh [PATH_TO_BINARY]   (default target/release/stardag-server)
# OPENAPI_VENV: venv to create/reuse (default <repo>/.venv-openapi).
set -euo pipefail
DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$DIR/../.." && pwd)"

HARNESS_NAME=openapi-test
. "$REPO/tests/lib/harness.sh"
harness_binary "${1:-target/release/stardag-server}"
harness_venv "${OPENAPI_VENV:-$REPO/.venv-openapi}" python3 9 "$DIR/requirements.txt"
harness_start 0 60

set +e
"$VPY" "$DIR/check.py" "$URL" "$(harness_cred STARDAG_API_KEY)"
RC=$?
set -e
exit "$RC"
