# shellcheck shell=bash
# Shared by the clean-room tests (scripts/test-install.sh, scripts/test-analytics.sh), sourced
# after they set NAME (their make target), SUITE and MIRROR and define log and fail.

# Stops the test with the reason: a skip (exit 0) normally, a failure under CI=true.
skip() {
    if [ "${CI:-}" = true ]; then
        fail "cannot run under CI=true: $*"
    fi
    log "SKIPPED (make $NAME not run): $*"
    exit 0
}

# Whether the Debian registry answers for $SUITE.
registry_reachable() {
    python3 - "$MIRROR/dists/$SUITE/Release" <<'PY' >/dev/null 2>&1
import sys, urllib.request
urllib.request.urlopen(urllib.request.Request(sys.argv[1], method="HEAD"), timeout=10)
PY
}

# debootstrap and chroot need root and debootstrap itself.
require_root_and_debootstrap() {
    [ "$(id -u)" -eq 0 ] || skip "needs root (debootstrap, chroot, mounts); run 'sudo make $NAME'"
    command -v debootstrap >/dev/null || skip "debootstrap is not installed (make system installs it)"
}
