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

# The test ledger (tests/common/ledger.rs): each root test that runs appends a line to
# `ran`, each test that cannot run (not root, a tool or a host feature missing) one to
# `skipped`, in a fresh directory per pass; scripts/test-ledger.sh counts them at the end.
ledger=$(mktemp -d -t berth-test-ledger.XXXXXX)
trap 'rm -rf "$ledger"' EXIT
mkdir "$ledger/native"
status=0
BERTH_TEST_LEDGER=$ledger/native cargo test --all-targets "$@" || status=$?

# The runtime suites again with every container run by runc (`--exec-driver oci`): the two
# exec drivers pass the same runtime tests. (root_info and root_oci check the driver
# itself; the rest are not about the runtime.)
if [[ $status -eq 0 && $(id -u) -eq 0 && $# -eq 0 ]]; then
    echo "test: the runtime suites on the oci driver (runc)" >&2
    mkdir "$ledger/oci"
    BERTH_TEST_LEDGER=$ledger/oci BERTH_TEST_EXEC_DRIVER=oci cargo test \
        --test root_containers --test root_process --test root_security --test root_cgroups \
        --test root_fields --test root_docker_exec --test root_observe --test root_images --test root_cp \
        --test root_restart --test root_health || status=$?
fi

# "root tests: N ran, M skipped" per pass, and what skipped and why. As root (CI) a skip
# fails the run, and so does a full run in which no root test ran; as another user the
# skips are printed and the status is cargo test's.
judge=()
if [[ $(id -u) -eq 0 ]]; then
    judge+=(--strict)
    [[ $# -eq 0 ]] && judge+=(--expect-runs)
fi
scripts/test-ledger.sh "${judge[@]}" "$ledger" || { [[ $status -ne 0 ]] || status=1; }
exit "$status"
