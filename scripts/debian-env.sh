#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Fresh Debian environments (chroots) for clean-room tests, made with debootstrap from the Debian
# package registry and cached under .cache/debian/<name>/; rebuilt only when the suite, the package
# lists or this recipe change. Needs root and debootstrap (scripts/setup-system.sh installs it).
#
#   scripts/debian-env.sh ensure SUITE NAME [--download PKG]... [PKG...]
#       Makes (or reuses) the environment NAME: debootstrap --variant=minbase SUITE, then
#       apt-get install PKG... (no recommends). --download PKG only fetches the package and what
#       it needs into the environment's apt cache, uninstalled, so that a test can install it later
#       without the network. Prints the environment's root folder on the last line.
#   scripts/debian-env.sh clone NAME DEST
#       A disposable copy of the environment NAME at DEST (a test changes it; the cache stays).
#   scripts/debian-env.sh run ROOT COMMAND [ARG...]
#       Runs COMMAND inside ROOT as root with an empty environment (PATH, HOME=/root, LANG=C.UTF-8
#       only), with /proc, /sys and /dev mounted for the call and unmounted afterwards, whatever
#       happens (trap).
#   scripts/debian-env.sh remove DEST
#       Deletes a clone (refuses while anything is mounted inside it).
#
# MIRROR (default http://deb.debian.org/debian) and SECURITY_MIRROR
# (http://deb.debian.org/debian-security) choose the registry.
set -euo pipefail

ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$ROOT_DIR/.cache/debian"
MIRROR=${MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${SECURITY_MIRROR:-http://deb.debian.org/debian-security}
RECIPE_VERSION=1
PLAIN_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

log() { echo "[debian-env] $*" >&2; }
die() { echo "[debian-env] ERROR: $*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot and mounts)"
}

# Mounts /proc, /sys and /dev into ROOT; umount_all undoes it. Mount points are remembered in
# MOUNTED, innermost last.
MOUNTED=()
mount_all() {
    local root=$1
    mount -t proc proc "$root/proc"
    MOUNTED+=("$root/proc")
    mount --bind /sys "$root/sys"
    MOUNTED+=("$root/sys")
    mount -o remount,bind,ro "$root/sys" 2>/dev/null || true
    mount --bind /dev "$root/dev"
    MOUNTED+=("$root/dev")
    if [ -d /dev/pts ] && [ -d "$root/dev/pts" ]; then
        mount --bind /dev/pts "$root/dev/pts"
        MOUNTED+=("$root/dev/pts")
    fi
}
umount_all() {
    local i
    for ((i = ${#MOUNTED[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTED[$i]}" 2>/dev/null || umount -l "${MOUNTED[$i]}" 2>/dev/null || true
    done
    MOUNTED=()
}

in_root() {  # ROOT COMMAND...: run without touching mounts (the caller has mounted)
    local root=$1
    shift
    cp -L /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
    chroot "$root" /usr/bin/env -i PATH="$PLAIN_PATH" HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive "$@"
}

any_mount_under() {
    local dir
    dir=$(realpath -m "$1")
    awk -v d="$dir" '$2 == d || index($2, d "/") == 1 { found = 1 } END { exit !found }' /proc/mounts
}

cmd_ensure() {
    need_root
    [ $# -ge 2 ] || die "usage: debian-env.sh ensure SUITE NAME [--download PKG]... [PKG...]"
    local suite=$1 name=$2
    shift 2
    local install=() download=()
    while [ $# -gt 0 ]; do
        case "$1" in
            --download) [ $# -ge 2 ] || die "--download needs a package"; download+=("$2"); shift 2 ;;
            *) install+=("$1"); shift ;;
        esac
    done
    command -v debootstrap >/dev/null || die "debootstrap is not installed (apt-get install debootstrap, or make system)"
    local dir="$CACHE/$name" want
    want=$(printf '%s\n' "recipe $RECIPE_VERSION" "suite $suite" "mirror $MIRROR $SECURITY_MIRROR" \
        "install $(printf '%s\n' "${install[@]}" | sort -u | tr '\n' ' ')" \
        "download $(printf '%s\n' "${download[@]}" | sort -u | tr '\n' ' ')" | sha256sum | cut -d' ' -f1)
    if [ -f "$dir/stamp" ] && [ "$(cat "$dir/stamp")" = "$want" ] && [ -x "$dir/root/usr/bin/apt-get" ]; then
        log "$name ($suite) cached in ${dir#"$ROOT_DIR"/}"
        echo "$dir/root"
        return
    fi
    any_mount_under "$dir" && die "something is still mounted under $dir; unmount it first"
    local t0=$SECONDS
    log "making $name: debootstrap --variant=minbase $suite from $MIRROR (a few minutes)"
    mkdir -p "$CACHE"
    [ -f "$ROOT_DIR/.cache/.gitignore" ] || echo '*' > "$ROOT_DIR/.cache/.gitignore"
    rm -rf "$dir.new"
    mkdir -p "$dir.new"
    local new="$dir.new/root"
    if ! debootstrap --variant=minbase "$suite" "$new" "$MIRROR" > "$dir.new/debootstrap.log" 2>&1; then
        tail -20 "$dir.new/debootstrap.log" >&2
        die "debootstrap failed (log: ${dir#"$ROOT_DIR"/}.new/debootstrap.log)"
    fi
    cat > "$new/etc/apt/sources.list" <<EOF
deb $MIRROR $suite main
deb $MIRROR $suite-updates main
deb $SECURITY_MIRROR $suite-security main
EOF
    # No services start inside; keep downloaded packages (for --download).
    printf '#!/bin/sh\nexit 101\n' > "$new/usr/sbin/policy-rc.d"
    chmod 755 "$new/usr/sbin/policy-rc.d"
    echo 'Binary::apt::APT::Keep-Downloaded-Packages "true";' > "$new/etc/apt/apt.conf.d/01keep-debs"
    rm -f "$new/etc/apt/apt.conf.d/docker-clean"
    trap umount_all EXIT
    mount_all "$new"
    in_root "$new" apt-get update -qq
    if [ ${#install[@]} -gt 0 ]; then
        log "installing ${#install[@]} package(s): ${install[*]}"
        in_root "$new" apt-get install -y -qq --no-install-recommends "${install[@]}" > "$dir.new/apt.log" 2>&1 \
            || { tail -20 "$dir.new/apt.log" >&2; die "apt-get install failed in $name"; }
    fi
    if [ ${#download[@]} -gt 0 ]; then
        log "downloading (not installing) ${#download[@]} package(s): ${download[*]}"
        in_root "$new" apt-get install -y -qq --no-install-recommends --download-only "${download[@]}" >> "$dir.new/apt.log" 2>&1 \
            || { tail -20 "$dir.new/apt.log" >&2; die "apt-get install --download-only failed in $name"; }
    fi
    umount_all
    trap - EXIT
    echo "$want" > "$dir.new/stamp"
    rm -rf "$dir"
    mv "$dir.new" "$dir"
    log "$name ready in $((SECONDS - t0)) s ($(du -sh "$dir/root" | cut -f1))"
    echo "$dir/root"
}

cmd_clone() {
    need_root
    [ $# -eq 2 ] || die "usage: debian-env.sh clone NAME DEST"
    local src="$CACHE/$1/root" dest=$2
    [ -d "$src" ] || die "no environment $1 (run: debian-env.sh ensure SUITE $1 ...)"
    [ -e "$dest" ] && cmd_remove "$dest"
    mkdir -p "$(dirname "$dest")"
    cp -a --reflink=auto "$src" "$dest"
    echo "$dest"
}

cmd_run() {
    need_root
    [ $# -ge 2 ] || die "usage: debian-env.sh run ROOT COMMAND [ARG...]"
    local root=$1
    shift
    [ -x "$root/usr/bin/env" ] || die "$root is not a Debian environment"
    trap umount_all EXIT INT TERM
    mount_all "$root"
    local rc=0
    in_root "$root" "$@" || rc=$?
    umount_all
    trap - EXIT INT TERM
    return $rc
}

cmd_remove() {
    [ $# -eq 1 ] || die "usage: debian-env.sh remove DEST"
    local dest=$1
    [ -e "$dest" ] || return 0
    any_mount_under "$dest" && die "something is still mounted under $dest; not removing it"
    rm -rf --one-file-system "$dest"
}

sub=${1:-}
shift || true
case "$sub" in
    ensure) cmd_ensure "$@" ;;
    clone) cmd_clone "$@" ;;
    run) cmd_run "$@" ;;
    remove) cmd_remove "$@" ;;
    *) sed -n '3,25p' "$0" >&2; exit 2 ;;
esac
