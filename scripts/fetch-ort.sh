#!/usr/bin/env bash
# Fetch the ONNX Runtime shared library from the onnxruntime wheel on PyPI
# (no other download source is reachable) into third_party/onnxruntime/lib/.
#
#   bash scripts/fetch-ort.sh           # no-op when the library is present
#   FORCE=1 bash scripts/fetch-ort.sh   # fetch again
#
# Result: third_party/onnxruntime/lib/libonnxruntime.so.1.31.1 (+ .so.1 / .so
# symlinks, libonnxruntime_providers_shared.so, LICENSE, ThirdPartyNotices.txt).
# Point the ort crate at it with ORT_DYLIB_PATH=.../libonnxruntime.so.1.31.1
# (load-dynamic) or ORT_LIB_LOCATION=third_party/onnxruntime/lib.
set -euo pipefail

ORT_VERSION=1.31.1
WHEEL="onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl"
WHEEL_SHA256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEELS="$ROOT/.cache/wheels"
DEST="$ROOT/third_party/onnxruntime/lib"
LIB="libonnxruntime.so.${ORT_VERSION}"

log() { echo "[ort] $*"; }
die() { echo "[ort] ERROR: $*" >&2; exit 1; }

if [[ "${FORCE:-0}" != 1 && -s "$DEST/$LIB" ]]; then
    log "onnxruntime $ORT_VERSION already in ${DEST#"$ROOT"/}"
    exit 0
fi

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"

mkdir -p "$WHEELS"
[[ -f "$ROOT/.cache/.gitignore" ]] || echo '*' > "$ROOT/.cache/.gitignore"
whl="$WHEELS/$WHEEL"
sha_ok() { [[ "$(sha256sum "$whl" | cut -d' ' -f1)" == "$WHEEL_SHA256" ]]; }
if ! { [[ -f "$whl" ]] && sha_ok; }; then
    rm -f "$whl"
    log "downloading onnxruntime==$ORT_VERSION (cp311 manylinux x86_64 wheel)"
    "$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.11 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_17_x86_64 -d "$WHEELS" "onnxruntime==$ORT_VERSION" \
        || die "pip download onnxruntime==$ORT_VERSION failed"
    [[ -f "$whl" ]] || die "pip did not produce $WHEEL"
    sha_ok || die "sha256 mismatch for $WHEEL"
fi

log "extracting into ${DEST#"$ROOT"/}"
mkdir -p "$DEST"
echo '*' > "$DEST/.gitignore"
"$PYTHON" - "$whl" "$DEST" "$LIB" <<'EOF'
import os, sys, zipfile
whl, dest, lib = sys.argv[1:4]
# The main library goes last: its presence is what marks the job as done.
wanted = {
    "onnxruntime/capi/libonnxruntime_providers_shared.so": ("libonnxruntime_providers_shared.so", False),
    "onnxruntime/LICENSE": ("LICENSE", False),
    "onnxruntime/ThirdPartyNotices.txt": ("ThirdPartyNotices.txt", False),
    f"onnxruntime/capi/{lib}": (lib, True),
}
with zipfile.ZipFile(whl) as z:
    names = set(z.namelist())
    for src, (dst, required) in wanted.items():
        if src not in names:
            if required:
                sys.exit(f"[ort] ERROR: {src} not in the wheel")
            print(f"[ort]   (no {src} in the wheel)")
            continue
        tmp = os.path.join(dest, dst + ".tmp")
        with open(tmp, "wb") as fh:
            fh.write(z.read(src))
        if dst.endswith((".so", lib)):
            os.chmod(tmp, 0o755)
        os.replace(tmp, os.path.join(dest, dst))
        print(f"[ort]   {dst}")
EOF
ln -sfn "$LIB" "$DEST/libonnxruntime.so.1"
ln -sfn "$LIB" "$DEST/libonnxruntime.so"
log "done: ${DEST#"$ROOT"/}/$LIB"
