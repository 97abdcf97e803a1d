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

# The runtime suites again with every container run by runc (`--exec-driver oci`): the two
# exec drivers pass the same runtime tests. (root_info and root_oci check the driver
# itself; the rest are not about the runtime.)
if [[ $(id -u) -eq 0 && $# -eq 0 ]]; then
    echo "test: the runtime suites on the oci driver (runc)" >&2
    BERTH_TEST_EXEC_DRIVER=oci cargo test \
        --test root_containers --test root_process --test root_security --test root_cgroups \
        --test root_fields --test root_docker_exec --test root_observe --test root_images --test root_cp \
        --test root_restart --test root_health
fi
