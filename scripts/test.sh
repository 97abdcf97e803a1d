#!/usr/bin/env bash
# Runs the whole test suite: formatting, lints, unit tests and (as root) the integration
# tests that start real berthd daemons and drive them with the docker CLI and the Python
# SDK. Installs missing tools first (scripts/deps.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ $(id -u) -eq 0 ]]; then
    scripts/deps.sh
else
    echo "test: not root: root integration tests will skip" >&2
fi
cargo fmt --all -- --check
cargo clippy --all-targets --all-features -- -D warnings
cargo test --all-targets "$@"
