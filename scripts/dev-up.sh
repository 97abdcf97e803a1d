#!/usr/bin/env bash
# Builds berthd, starts it in the background on the default paths (data root
# /var/lib/berth, socket /run/berth.sock, log /var/log/berthd.log) and imports a small
# busybox image as busybox:latest. Run as root. Stop it with: kill "$(cat /run/berthd.pid)".
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/deps.sh
cargo build --release
sock=${BERTH_SOCK:-/run/berth.sock}
log=${BERTH_LOG_FILE:-/var/log/berthd.log}
if [[ -S $sock ]] && curl -sf --unix-socket "$sock" http://x/_ping >/dev/null; then
    echo "berthd is already running on $sock"
else
    nohup target/release/berthd -H "unix://$sock" "$@" >>"$log" 2>&1 &
    for _ in $(seq 1 100); do
        curl -sf --unix-socket "$sock" http://x/_ping >/dev/null 2>&1 && break
        sleep 0.1
    done
    curl -sf --unix-socket "$sock" http://x/_ping >/dev/null || {
        echo "berthd did not start; see $log" >&2
        tail -5 "$log" >&2
        exit 1
    }
fi
export DOCKER_HOST="unix://$sock"
if ! docker image inspect busybox:latest >/dev/null 2>&1; then
    tar=$(mktemp --suffix=.tar)
    scripts/mkbusybox.sh "$tar"
    docker import -c 'CMD ["sh"]' "$tar" busybox:latest
    rm -f "$tar"
fi
echo
echo "berthd is running. Try:"
echo "  export DOCKER_HOST=unix://$sock"
echo "  docker run --rm --network none busybox echo hi"
