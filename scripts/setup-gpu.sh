#!/usr/bin/env bash
# GPU mode: ONNX Runtime with its CUDA provider, and the CUDA 13 libraries it needs, from pinned
# PyPI wheels (sha256-checked, cached in .cache/wheels-gpu/) into third_party/onnxruntime-gpu/
# (git-ignored):
#
#   lib/   libonnxruntime.so.1.31.1 (+ .so.1/.so links), libonnxruntime_providers_shared.so,
#          libonnxruntime_providers_cuda.so, libonnxruntime_providers_tensorrt.so, LICENSE,
#          ThirdPartyNotices.txt
#   cuda/  CUDA runtime, NVRTC, cuBLAS(Lt), cuFFT, cuRAND, cuDNN 9, with their licences, and
#          preload.txt: those libraries in dependency order (each after the ones it needs). The
#          engine loads them in that order before it asks for the CUDA provider, so nobody has
#          to set LD_LIBRARY_PATH.
#
#   bash scripts/setup-gpu.sh           # a second run only checks
#   FORCE=1 bash scripts/setup-gpu.sh   # lay out again
#
# What it does not bring: the NVIDIA driver (libcuda.so.1 comes with it; CUDA 13 needs driver
# 580 or newer), and TensorRT: PyPI's tensorrt-cu13-libs is a source package whose build fetches
# the libraries from pypi.nvidia.com, outside the package registries set-up may use.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WHEELS="$ROOT/.cache/wheels-gpu"
DEST="$ROOT/third_party/onnxruntime-gpu"
ORT_LIB="libonnxruntime.so.1.31.1"
STAMP="$DEST/.stamp"

# name==version sha256 (the manylinux x86-64 wheels for Python 3.11).
PINNED=(
    "onnxruntime-gpu==1.31.1 e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6"
    "nvidia-cuda-runtime==13.5.37 df2b79a8852f10d1fef8c848489c49eebb5754051bf870202a862831412b179d"
    "nvidia-cuda-nvrtc==13.5.37 86b4d68058807988b7d9af5b44917a0601e9c337f35ccd657bfb3c759ff8d8bc"
    "nvidia-cublas==13.10.0.20 dcc6d63884c53d07e267ce7e6feac17b2538cebaafec5db865736c3e28e4dc84"
    "nvidia-cufft==12.5.0.14 b8be26837a5abad2b5b74f3e92dd29f622a42934b355be0961a48712cbba23ad"
    "nvidia-curand==10.4.5.25 22bb226a857e5888fe6b54ae465fc4371296bcff13a35f79e19691bcf454f529"
    "nvidia-cudnn-cu13==9.28.1.4 a54f205b1db1f2895d99f398754db1369816f0569dd459731f925635cf7b65ec"
)

log() { echo "[gpu] $*"; }
die() { echo "[gpu] ERROR: $*" >&2; exit 1; }

pins_hash() { printf '%s\n' "${PINNED[@]}" | sha256sum | cut -d' ' -f1; }

if [[ "${FORCE:-0}" != 1 && -s "$DEST/lib/$ORT_LIB" && -s "$DEST/cuda/preload.txt" && -f "$STAMP" \
      && "$(cat "$STAMP")" == "$(pins_hash)" ]]; then
    log "GPU ONNX Runtime and CUDA libraries already in ${DEST#"$ROOT"/} ($(du -sh "$DEST" | cut -f1))"
    exit 0
fi

PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found"
command -v readelf >/dev/null || die "readelf not found (Debian package binutils)"
mkdir -p "$WHEELS"
[[ -f "$ROOT/.cache/.gitignore" ]] || echo '*' > "$ROOT/.cache/.gitignore"

# The wheel file of a pin, once downloaded and checked.
wheel_for() {
    local spec="$1" sha="$2" f
    for f in "$WHEELS"/*.whl; do
        [[ -f "$f" ]] || continue
        if [[ "$(sha256sum "$f" | cut -d' ' -f1)" == "$sha" ]]; then
            echo "$f"
            return 0
        fi
    done
    return 1
}

WHEEL_FILES=()
for pin in "${PINNED[@]}"; do
    spec="${pin% *}"
    sha="${pin#* }"
    if ! whl="$(wheel_for "$spec" "$sha")"; then
        log "downloading $spec"
        "$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
            --python-version 3.11 --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
            --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform manylinux_2_12_x86_64 --platform manylinux_2_5_x86_64 \
            -d "$WHEELS" "$spec" || die "pip download $spec failed"
        whl="$(wheel_for "$spec" "$sha")" \
            || die "no wheel of $spec with sha256 $sha in ${WHEELS#"$ROOT"/} (the registry's file changed?)"
    fi
    WHEEL_FILES+=("$whl")
done

log "laying out ${DEST#"$ROOT"/}"
rm -rf "$DEST.tmp"
mkdir -p "$DEST.tmp/lib" "$DEST.tmp/cuda"
"$PYTHON" - "$DEST.tmp" "${WHEEL_FILES[@]}" <<'EOF'
import os, re, sys, zipfile
dest, wheels = sys.argv[1], sys.argv[2:]
for whl in wheels:
    base = os.path.basename(whl)
    with zipfile.ZipFile(whl) as z:
        for name in z.namelist():
            leaf = os.path.basename(name)
            if base.startswith("onnxruntime_gpu-"):
                if name.startswith("onnxruntime/capi/libonnxruntime") and ".so" in leaf:
                    sub = "lib"
                elif name in ("onnxruntime/LICENSE", "onnxruntime/ThirdPartyNotices.txt"):
                    sub = "lib"
                else:
                    continue
            elif re.search(r"\.so(\.\d+)+$", leaf) and "/lib/" in name:
                sub = "cuda"
            elif re.search(r"\.dist-info/(licenses/)?(LICENSE|License)", name):
                # Each NVIDIA wheel's licence, named after its package.
                pkg = base.split("-")[0]
                leaf = f"LICENSE.{pkg}.txt"
                sub = "cuda"
            else:
                continue
            out = os.path.join(dest, sub, leaf)
            with open(out, "wb") as fh:
                fh.write(z.read(name))
            if ".so" in leaf:
                os.chmod(out, 0o755)
EOF
[[ -s "$DEST.tmp/lib/$ORT_LIB" ]] || die "$ORT_LIB not in the onnxruntime-gpu wheel"
ln -sfn "$ORT_LIB" "$DEST.tmp/lib/libonnxruntime.so.1"
ln -sfn "$ORT_LIB" "$DEST.tmp/lib/libonnxruntime.so"

# preload.txt: the CUDA libraries, each after every library of the folder it needs (DT_NEEDED),
# then the ones nothing links to but that load others at run time (cuDNN's sub-libraries).
"$PYTHON" - "$DEST.tmp/cuda" <<'EOF'
import os, subprocess, sys
folder = sys.argv[1]
libs = sorted(f for f in os.listdir(folder) if ".so" in f and not f.startswith("LICENSE"))
needs = {}
for lib in libs:
    out = subprocess.run(["readelf", "-d", os.path.join(folder, lib)], capture_output=True, text=True).stdout
    deps = [l.split("[", 1)[1].split("]", 1)[0] for l in out.splitlines() if "(NEEDED)" in l]
    needs[lib] = [d for d in deps if d in libs and d != lib]
order, seen = [], set()
def visit(lib, path=()):
    if lib in seen:
        return
    if lib in path:
        sys.exit(f"[gpu] ERROR: dependency cycle through {lib}")
    for d in needs[lib]:
        visit(d, path + (lib,))
    seen.add(lib)
    order.append(lib)
for lib in libs:
    visit(lib)
with open(os.path.join(folder, "preload.txt"), "w") as fh:
    fh.write("# CUDA libraries for ONNX Runtime's CUDA provider, in load order (made by scripts/setup-gpu.sh)\n")
    for lib in order:
        fh.write(lib + "\n")
print(f"[gpu]   {len(order)} CUDA libraries, load order in cuda/preload.txt")
EOF

echo '*' > "$DEST.tmp/.gitignore"
rm -rf "$DEST"
mv "$DEST.tmp" "$DEST"
pins_hash > "$STAMP"
log "done: ${DEST#"$ROOT"/} ($(du -sh "$DEST" | cut -f1)); the engine prefers it to the CPU build"
log "needs the NVIDIA driver (CUDA 13: driver 580 or newer) for execution-provider=cuda; without one it runs on the CPU and says why"
