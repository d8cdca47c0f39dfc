#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""`make bench`'s peer: MediaPipe's legacy FaceMesh solution on the bench's raw frames.

Run by examples/bench.rs with the bench-only virtual environment's python
(.cache/bench-venv, made by scripts/bench.sh from scripts/bench-requirements.txt; not part of
the product). The bench writes the exact frames it feeds faceposeestimator, converted to packed
RGB by GStreamer's video converter, into one raw file (frame after frame, no header); this script
reads them all into memory, makes `mediapipe.solutions.face_mesh.FaceMesh` (python, TFLite with
XNNPACK on the CPU, static_image_mode=False so it tracks faces by their landmarks and runs its
detector only when it has fewer than max_num_faces, refine_landmarks=False, min detection and
tracking confidence 0.5), then times `process()` over every frame: fps = frames / wall time from
the first frame to the last, the graph set-up not counted (as the bench does not count our model
loading). It also counts the faces FaceMesh returned (`multi_face_landmarks`) on each frame:
their total over all frames and the frames with at least one. It prints one line the bench
parses:

    BENCH-RESULT frames=N seconds=S faces_per_frame=F faces=T face_frames=K peak_kib=P input_bytes=B

peak_kib is the process's VmHWM, reset once the frames are in memory (so it holds them, the
models and the graph). `--check` only imports MediaPipe and prints what it is.
`--runs N` (standalone use) runs N times, each in a fresh process, and prints the median fps.
"""

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time

RESULT_PREFIX = "BENCH-RESULT"


def describe():
    """MediaPipe's version and what it runs on, or raises when it cannot be used."""
    import mediapipe as mp
    import numpy as np

    mp.solutions.face_mesh.FaceMesh  # the legacy solution this bench needs
    return (
        f"mediapipe {mp.__version__} (python {platform.python_version()}, numpy {np.__version__})"
    )


def status_kib(key):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def run_once(args):
    import numpy as np
    import mediapipe as mp

    frame_bytes = args.width * args.height * 3
    frames = np.fromfile(args.frames, dtype=np.uint8, count=frame_bytes * args.count)
    if frames.size != frame_bytes * args.count:
        sys.exit(f"{args.frames}: {frames.size} bytes, expected {frame_bytes * args.count}")
    frames = frames.reshape(args.count, args.height, args.width, 3)
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError as e:
        print(f"BENCH-NOTE MediaPipe: cannot reset the peak memory ({e})")

    mesh = mp.solutions.face_mesh.FaceMesh(
        static_image_mode=False,
        max_num_faces=args.max_faces,
        refine_landmarks=False,
        min_detection_confidence=0.5,
        min_tracking_confidence=0.5,
    )
    faces = 0
    face_frames = 0
    started = time.perf_counter()
    for frame in frames:
        found = mesh.process(frame).multi_face_landmarks
        if found:
            faces += len(found)
            face_frames += 1
    seconds = time.perf_counter() - started
    peak = status_kib("VmHWM")
    mesh.close()
    print(
        f"{RESULT_PREFIX} frames={args.count} seconds={seconds} "
        f"faces_per_frame={faces / args.count} faces={faces} face_frames={face_frames} "
        f"peak_kib={peak if peak is not None else '-'} input_bytes={frames.nbytes}",
        flush=True,
    )


def run_many(args):
    """Each run in a fresh process; prints every run's line and the median fps."""
    argv = [sys.executable, os.path.abspath(__file__)]
    argv += ["--frames", args.frames, "--width", str(args.width), "--height", str(args.height)]
    argv += ["--count", str(args.count), "--max-faces", str(args.max_faces)]
    fps = []
    faces = []
    face_frames = []
    for _ in range(args.runs):
        out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
        line = next(l for l in out.splitlines() if l.startswith(RESULT_PREFIX))
        print(line, flush=True)
        fields = dict(p.split("=", 1) for p in line.split()[1:])
        fps.append(int(fields["frames"]) / float(fields["seconds"]))
        faces.append(int(fields["faces"]))
        face_frames.append(int(fields["face_frames"]))
    print(
        f"median fps {statistics.median(fps):.1f} of {args.runs} run(s); "
        f"median faces {statistics.median(faces):g}, frames with a face "
        f"{statistics.median(face_frames):g}/{args.count}"
    )


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="import MediaPipe, print its version")
    p.add_argument("--frames", help="raw packed RGB frames, one after the other")
    p.add_argument("--width", type=int)
    p.add_argument("--height", type=int)
    p.add_argument("--count", type=int, help="frames in the file")
    p.add_argument("--max-faces", type=int, default=1, help="FaceMesh's max_num_faces")
    p.add_argument("--runs", type=int, default=1, help="runs, each in a fresh process")
    args = p.parse_args()
    if args.check:
        print(describe())
        return
    if not (args.frames and args.width and args.height and args.count):
        p.error("--frames, --width, --height and --count are needed")
    if args.runs > 1:
        run_many(args)
    else:
        run_once(args)


if __name__ == "__main__":
    main()
