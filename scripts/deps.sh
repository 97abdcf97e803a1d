#!/usr/bin/env bash
# Installs what berthd and its tests need on a fresh Debian machine (idempotent; quick
# when everything is there): libseccomp-dev (linked into berthd: the seccomp filters),
# iptables, busybox-static (the test image), prometheus (for promtool), systemd
# (systemd-analyze), the docker CLI when missing, runc and tini (the oci exec driver's
# runtime, and its static docker-init for `--init`: tini-static), crun (the second runtime
# of `--add-runtime`'s test: as root no test may skip), docker-registry (the registry
# tests/root_registry.rs runs on 127.0.0.1) with apache2-utils (its `htpasswd` makes the
# bcrypt password file) and openssl (the token service's key and signatures), Debian's
# docker-compose (tests/root_compose.rs), and the Python docker SDK.
set -euo pipefail

need=()
[[ -e /usr/include/seccomp.h ]] || need+=(libseccomp-dev)
command -v iptables >/dev/null 2>&1 || need+=(iptables)
[[ -x /bin/busybox ]] || need+=(busybox-static)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v docker >/dev/null 2>&1 || need+=(docker.io)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v runc >/dev/null 2>&1 || need+=(runc)
command -v crun >/dev/null 2>&1 || need+=(crun)
command -v docker-init >/dev/null 2>&1 || command -v tini-static >/dev/null 2>&1 || need+=(tini)
[[ -x /usr/bin/docker-registry ]] || need+=(docker-registry)
command -v htpasswd >/dev/null 2>&1 || need+=(apache2-utils)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v docker-compose >/dev/null 2>&1 || need+=(docker-compose)
if ((${#need[@]})); then
    echo "deps: installing ${need[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # docker.io pulls in dockerd and containerd; only its CLI is used, and nothing here
    # starts them.
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
if ! python3 -c 'import docker' >/dev/null 2>&1; then
    echo "deps: installing the Python docker SDK" >&2
    python3 -m pip install -q 'docker==7.1.0'
fi
