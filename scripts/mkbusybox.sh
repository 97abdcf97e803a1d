#!/usr/bin/env bash
# Builds a busybox root filesystem tarball from Debian's busybox-static.
#
#   scripts/mkbusybox.sh OUT.tar
#
# The tarball is deterministic: fixed mtimes, sorted names, numeric owner 0:0, GNU format
# without access or change times, so two builds give the same bytes (and the same image id).
set -euo pipefail

usage() {
    echo "usage: $0 OUT.tar" >&2
    exit 2
}

[[ $# -eq 1 ]] || usage
out=$1
[[ -n $out ]] || usage

# BUSYBOX overrides the binary (tests use it to check the message below).
busybox=${BUSYBOX:-/bin/busybox}
if [[ ! -x $busybox ]]; then
    echo "$busybox not found: apt-get install busybox-static" >&2
    exit 1
fi

stage=$(mktemp -d)
tmp_out=""
cleanup() {
    rm -rf -- "$stage"
    if [[ -n $tmp_out ]]; then
        rm -f -- "$tmp_out"
    fi
}
trap cleanup EXIT

umask 022
for d in bin sbin usr usr/bin usr/sbin etc proc sys dev tmp root var home; do
    mkdir -p -- "$stage/$d"
done
chmod 0755 -- "$stage"/bin "$stage"/sbin "$stage"/usr "$stage"/usr/bin "$stage"/usr/sbin \
    "$stage"/etc "$stage"/proc "$stage"/sys "$stage"/dev "$stage"/var "$stage"/home
chmod 1777 -- "$stage/tmp"
chmod 0700 -- "$stage/root"

install -m 0755 -- "$busybox" "$stage/bin/busybox"

# One symlink per applet, at the path busybox itself reports (bin/sh, usr/bin/env, ...).
# Applets at the top level (linuxrc) are left out: an image root holds only directories.
while IFS= read -r applet; do
    case $applet in
        */*) ;;
        *) continue ;;
    esac
    [[ $applet == bin/busybox ]] && continue
    dir=${applet%/*}
    mkdir -p -- "$stage/$dir"
    ln -sfn /bin/busybox "$stage/$applet"
done < <("$stage/bin/busybox" --list-full | LC_ALL=C sort -u)

printf '%s\n' \
    'root:x:0:0:root:/root:/bin/sh' \
    'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$stage/etc/passwd"
printf '%s\n' \
    'root:x:0:' \
    'nogroup:x:65534:' >"$stage/etc/group"
chmod 0644 -- "$stage/etc/passwd" "$stage/etc/group"

out_dir=$(dirname -- "$out")
mkdir -p -- "$out_dir"
tmp_out=$(mktemp -- "$out_dir/.mkbusybox.XXXXXX")

# Top-level names sorted the same way tar sorts the rest.
mapfile -t top < <(cd "$stage" && find . -mindepth 1 -maxdepth 1 -printf '%P\n' | LC_ALL=C sort)

LC_ALL=C tar \
    --create \
    --file="$tmp_out" \
    --directory="$stage" \
    --format=gnu \
    --sort=name \
    --mtime=@0 \
    --owner=0 --group=0 --numeric-owner \
    --no-acls --no-xattrs --no-selinux \
    -- "${top[@]}"

chmod 0644 -- "$tmp_out"
mv -f -- "$tmp_out" "$out"
tmp_out=""
echo "$out: busybox rootfs, sha256 $(sha256sum -- "$out" | cut -d' ' -f1)"
