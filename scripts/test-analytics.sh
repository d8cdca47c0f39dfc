#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# make test-analytics: the `analytics` feature against a real GStreamer >= 1.26, which Debian 12
# lacks. A Debian 13 (trixie) environment (debootstrap --variant=minbase from the Debian
# registry, cached under .cache/debian/trixie-analytics by scripts/debian-env.sh, rebuilt only
# when PACKAGES below change) gets GStreamer 1.26 with its -bad plugins (objectdetectionoverlay),
# gstreamer-analytics-1.0 and the GstAnalytics typelib. The host's Rust toolchain (/root/.rustup,
# /root/.cargo) and this source tree are bind-mounted into it; inside, the plugin is built with
# --features analytics into .cache/analytics-target (the host's target/ is untouched), then:
#   - tests/analytics.rs reads the faces back through the analytics API from Rust and runs
#     upstream's objectdetectionoverlay after our element, checking that it drew our boxes
#     (the drawn frame is saved as out/analytics-overlay.png);
#   - tests/analytics_read.py reads them back from Python (GI GstAnalytics).
#
#   bash scripts/test-analytics.sh                   # needs root
#   bash scripts/test-analytics.sh --from-make-test  # skips (saying why) without root or
#                                                    # registry; under CI=true it never skips
#   bash scripts/test-analytics.sh --inside          # (what runs inside the environment)
#   ANALYTICS_CLIPPY=1 [ANALYTICS_CLIPPY_ARGS="-A …"] # also cargo clippy --features analytics
#                                                    # inside (-D warnings)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT_DIR=$PWD

SUITE=trixie
ENV_NAME=trixie-analytics
MIRROR=${MIRROR:-http://deb.debian.org/debian}
PACKAGES=(gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-bad
    libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev libgstreamer-plugins-bad1.0-dev
    python3-gi python3-gst-1.0 gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
    gir1.2-gst-plugins-bad-1.0 pkg-config gcc libc6-dev ca-certificates)
# Where things are inside the environment.
SRC=/src
TARGET=$SRC/.cache/analytics-target
JOBS=${ANALYTICS_JOBS:-2}

log() { echo "[test-analytics] $*"; }
fail() { echo "[test-analytics] FAIL: $*" >&2; exit 1; }

# ------------------------------------------------------------------ inside the environment
if [ "${1:-}" = --inside ]; then
    export PATH=/root/.cargo/bin:$PATH CARGO_HOME=/root/.cargo RUSTUP_HOME=/root/.rustup
    export CARGO_TARGET_DIR=$TARGET CARGO_BUILD_JOBS=$JOBS
    cd "$SRC"
    log "inside: GStreamer $(pkg-config --modversion gstreamer-1.0), gstreamer-analytics-1.0 $(pkg-config --modversion gstreamer-analytics-1.0), $(rustc --version)"
    cargo build --offline --release --lib --features analytics
    RUST_BACKTRACE=1 cargo test --offline --release --features analytics --test analytics -- --test-threads=1 --nocapture
    GST_PLUGIN_PATH=$TARGET/release python3 tests/analytics_read.py
    if [ "${ANALYTICS_CLIPPY:-0}" = 1 ]; then
        # shellcheck disable=SC2086 # ANALYTICS_CLIPPY_ARGS: extra lint flags, split on spaces
        cargo clippy --offline --release --all-targets --features analytics -- -D warnings ${ANALYTICS_CLIPPY_ARGS:-}
    fi
    exit 0
fi

# ------------------------------------------------------------------ on the host
T0=$SECONDS
from_make_test=0
[ "${1:-}" = --from-make-test ] && from_make_test=1

NAME=test-analytics
# shellcheck source=scripts/clean-room-common.sh
. "$(dirname "${BASH_SOURCE[0]}")/clean-room-common.sh"

require_root_and_debootstrap
RUSTUP_DIR=${RUSTUP_HOME:-$HOME/.rustup}
CARGO_DIR=${CARGO_HOME:-$HOME/.cargo}
[ -d "$RUSTUP_DIR" ] && [ -x "$CARGO_DIR/bin/cargo" ] || skip "no rustup toolchain in $RUSTUP_DIR and $CARGO_DIR to lend to the environment"
for f in models/retinaface_mbv2.onnx models/face_landmark.onnx models/samples/astronaut.png third_party/onnxruntime/lib/libonnxruntime.so; do
    [ -e "$f" ] || fail "$f is missing: run 'make setup' first"
done
if ! bash scripts/debian-env.sh ensure "$SUITE" "$ENV_NAME" "${PACKAGES[@]}" > /dev/null 2> /tmp/test-analytics-env.$$; then
    if ! registry_reachable; then
        rm -f /tmp/test-analytics-env.$$
        skip "the Debian registry ($MIRROR) cannot be reached to make the $SUITE environment"
    fi
    cat /tmp/test-analytics-env.$$ >&2
    rm -f /tmp/test-analytics-env.$$
    fail "could not make the $SUITE environment"
fi
cat /tmp/test-analytics-env.$$ >&2
rm -f /tmp/test-analytics-env.$$
ENV_ROOT=$ROOT_DIR/.cache/debian/$ENV_NAME/root
T_ENV=$((SECONDS - T0))

# Every crate the build needs, fetched here (the environment builds offline).
cargo fetch --quiet

# Bind mounts for the call, undone whatever happens.
MOUNTS=()
unmount_all() {
    local i
    for ((i = ${#MOUNTS[@]} - 1; i >= 0; i--)); do
        umount "${MOUNTS[$i]}" 2>/dev/null || umount -l "${MOUNTS[$i]}" 2>/dev/null || true
    done
    MOUNTS=()
}
trap unmount_all EXIT INT TERM
bind() {  # HOST_DIR INSIDE_PATH
    mkdir -p "$ENV_ROOT$2"
    mount --bind "$1" "$ENV_ROOT$2"
    MOUNTS+=("$ENV_ROOT$2")
}
bind "$ROOT_DIR" "$SRC"
bind "$RUSTUP_DIR" /root/.rustup
bind "$CARGO_DIR" /root/.cargo
mkdir -p out .cache/analytics-target
rc=0
bash scripts/debian-env.sh run "$ENV_ROOT" /usr/bin/env ANALYTICS_JOBS="$JOBS" \
    ANALYTICS_CLIPPY="${ANALYTICS_CLIPPY:-0}" ANALYTICS_CLIPPY_ARGS="${ANALYTICS_CLIPPY_ARGS:-}" /bin/bash "$SRC/scripts/test-analytics.sh" --inside || rc=$?
unmount_all
trap - EXIT INT TERM
[ $rc -eq 0 ] || fail "inside the $SUITE environment (above)"
log "passed in $((SECONDS - T0)) s (environment ready after ${T_ENV} s)"
