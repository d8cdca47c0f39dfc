#!/usr/bin/env bash
# Runs the faceposeestimator element in gst-launch-1.0 on pictures or a video, writing the
# annotated output and JSON Lines to out/ and printing a short summary per face.
#   scripts/demo.sh [INPUT]     (default: the two public-domain sample pictures)
set -euo pipefail
cd "$(dirname "$0")/.."
export GST_PLUGIN_PATH="$PWD/target/release${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}"
mkdir -p out

if ! gst-inspect-1.0 faceposeestimator >/dev/null 2>&1; then
    echo "[demo] the faceposeestimator element is not found in target/release; run 'make build'" >&2
    exit 1
fi

summarise() {
    python3 - "$1" <<'PY'
import json, sys
path = sys.argv[1]
# Frame lines (the last line may end the open tracks: it has no pts).
frames = [d for d in map(json.loads, open(path)) if "pts" in d]
faces = sum(len(f["faces"]) for f in frames)
print(f"  {len(frames)} frame(s), {faces} face(s) in total -> {path}")
for i, f in enumerate(frames[:5]):
    for j, face in enumerate(f["faces"]):
        x0, y0, x1, y1 = face["box"]
        print(f"  frame {i} face {j}: box ({x0:.0f}, {y0:.0f})-({x1:.0f}, {y1:.0f}) score {face['score']:.3f}"
              f"  yaw {face['yaw']:+.1f}  pitch {face['pitch']:+.1f}  roll {face['roll']:+.1f}"
              f"  ({face.get('method')}, regressor weight {face.get('regression_weight') or 0:.2f})")
if len(frames) > 5:
    print(f"  … {len(frames) - 5} more frame(s)")
PY
}

run_one() {
    local input=$1
    if [ ! -f "$input" ]; then
        echo "[demo] no such input file: $input" >&2
        exit 1
    fi
    local name
    name=$(basename "${input%.*}")
    local json="out/${name}.jsonl"
    case "${input,,}" in
        *.png | *.jpg | *.jpeg)
            local out="out/${name}_annotated.png"
            # A still picture is often a crop taken with an unknown lens: its angles are given
            # along each face's line of sight (camera-fov=0), not in an assumed webcam's frame.
            gst-launch-1.0 -q filesrc location="$input" ! decodebin ! videoconvert \
                ! faceposeestimator draw=true camera-fov=0 json-location="$json" \
                ! videoconvert ! pngenc ! filesink location="$out"
            ;;
        *)
            local out="out/${name}_annotated.mp4"
            local encoder="x264enc tune=zerolatency"
            gst-inspect-1.0 x264enc >/dev/null 2>&1 || encoder="avenc_mpeg4 bitrate=4000000"
            gst-launch-1.0 -q filesrc location="$input" ! decodebin ! videoconvert \
                ! faceposeestimator draw=true json-location="$json" \
                ! videoconvert ! $encoder ! mp4mux ! filesink location="$out"
            ;;
    esac
    echo "[demo] $input -> $out"
    summarise "$json"
}

if [ $# -gt 0 ] && [ -n "$1" ]; then
    run_one "$1"
else
    for p in models/samples/astronaut.png models/samples/grace_hopper.jpg; do
        run_one "$p"
    done
fi
