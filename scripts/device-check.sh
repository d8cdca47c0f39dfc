#!/usr/bin/env bash
# The one-shot check for a machine with an NVIDIA GPU (CUDA 13 driver): sets up GPU mode, runs the
# element on the cuda provider on the sample pictures, measures the element on cpu, cuda and
# tensorrt at 640x480, 1280x720 (one face) and on the 1080p crowd video (detector on every frame
# and tracking), with the pre-processing on the host and in the models' frame graphs
# (preprocess=graph, on the device), compares the GPU runs' angles with the CPU's (host) on the
# same frames, and writes
# out/device-report.md (GPU, driver, fps and per-stage ms per case and provider, angle
# differences). Meant to finish in under 8 minutes.
#
#   bash scripts/device-check.sh                  # on the GPU machine
#   bash scripts/device-check.sh --cpu-rehearsal  # here: the same steps on the cpu provider only
#                                                 # (host and graph pre-processing), fewer
#                                                 # frames, the same report shape
#
# A provider that cannot run is reported with the element's error (fallback=false), never
# measured on the CPU in its place.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=device
case "${1:-}" in
    "") ;;
    --cpu-rehearsal) mode=rehearsal ;;
    *) echo "usage: $0 [--cpu-rehearsal]" >&2; exit 2 ;;
esac
started=$(date +%s)
log() { echo "[device-check] $*"; }
die() { echo "[device-check] ERROR: $*" >&2; exit 1; }

# provider:host / provider:graph: where the pre-processing runs (the host warp, or the models'
# frame graphs on the provider's device); the first, cpu:host, is the reference of the angle
# differences.
if [[ $mode == device ]]; then
    providers=cpu:host,cuda:host,cuda:graph,tensorrt:graph
    element_provider=cuda
    frames=300
    video_frames=105
else
    providers=cpu:host,cpu:graph
    element_provider=cpu
    frames=${DEVICE_CHECK_FRAMES:-20}
    video_frames=${DEVICE_CHECK_VIDEO_FRAMES:-8}
fi

log "1/4 set-up ($mode)"
make -s setup >/dev/null
bash scripts/setup-gpu.sh

log "2/4 build"
cargo build --release --quiet --lib --example device_check

log "3/4 the element on the $element_provider provider (fallback=false, preprocess host and graph) on the sample pictures"
export GST_PLUGIN_PATH="$PWD/target/release"
mkdir -p out/device-check
for picture in models/samples/*.png; do
  for preprocess in host graph; do
    name=$(basename "${picture%.*}")
    json="out/device-check/$name-$element_provider-$preprocess.jsonl"
    gst-launch-1.0 -q filesrc location="$picture" ! decodebin ! videoconvert ! \
        faceposeestimator execution-provider=$element_provider fallback=false camera-fov=0 \
        preprocess=$preprocess json-location="$json" ! fakesink \
        || die "the element did not run on $element_provider (preprocess=$preprocess) with $picture"
    python3 - "$json" "$element_provider" <<'EOF'
import json, sys
path, provider = sys.argv[1:3]
# Frame lines (the last line may end the open tracks: it has no pts).
frames = [d for d in map(json.loads, open(path)) if "pts" in d]
faces = [f for fr in frames for f in fr["faces"]]
if len(faces) != 1:
    sys.exit(f"[device-check] ERROR: {path}: {len(faces)} faces, expected 1")
f = faces[0]
print(f"[device-check]   {path}: 1 face, yaw {f['yaw']:+.2f} pitch {f['pitch']:+.2f} roll {f['roll']:+.2f} ({provider})")
EOF
  done
done

log "4/4 speed and angles on: $providers"
table=out/device-check/table.md
target/release/examples/device_check --out "$table" --providers "$providers" \
    --frames "$frames" --video-frames "$video_frames" --title "measurements" >/dev/null

gpu="none"
driver="none"
if command -v nvidia-smi >/dev/null 2>&1; then
    gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 || echo unknown)
    driver=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -1 || echo unknown)
fi
{
    echo "# Device report"
    echo
    if [[ $mode == rehearsal ]]; then
        echo "CPU rehearsal (\`scripts/device-check.sh --cpu-rehearsal\`): the device check's steps on the"
        echo "cpu provider only, $frames frames per synthetic case and $video_frames of the video."
    else
        echo "Device check (\`scripts/device-check.sh\`): providers $providers, $frames frames per"
        echo "synthetic case and $video_frames of the video."
    fi
    echo
    echo "| | |"
    echo "|---|---|"
    echo "| date | $(date -u +%Y-%m-%dT%H:%M:%SZ) |"
    echo "| commit | $(git rev-parse --short HEAD 2>/dev/null || echo unknown) |"
    echo "| GPU | $gpu |"
    echo "| driver | $driver |"
    echo "| CPU | $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //') × $(nproc) |"
    echo "| ONNX Runtime | 1.31.1 ($(ls -d third_party/onnxruntime-gpu/lib >/dev/null 2>&1 && echo 'GPU build from make setup-gpu' || echo 'CPU build')) |"
    echo "| the element on $element_provider, sample pictures | one face each, preprocess=host and graph (step 3) |"
    echo "| pre-processing | provider:host = the host warp, provider:graph = the models' frame graphs (preprocess=graph) |"
    echo
    tail -n +3 "$table"
    echo
    echo "Took $(( $(date +%s) - started )) s."
} > out/device-report.md
log "written out/device-report.md in $(( $(date +%s) - started )) s"
