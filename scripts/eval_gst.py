#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Head-pose accuracy of the element itself, as a user runs it: every labelled AFLW2000-3D picture
(|angles| <= 99 deg) goes through one gst-launch-1.0 pipeline

    multifilesrc ! jpegdec ! videoconvert ! faceposeestimator detection-interval=1 json-location=…

and the JSON Lines it writes are scored against the labels (MAE per axis, by |yaw| band, detection
rate). Extra element properties follow the labels file:

    scripts/eval_gst.py ../shared/data/aflw2000/labels.csv [--out DIR] [prop=value ...]

The pictures are reached through numbered links in DIR/frames (nothing is copied).
"""
import csv
import json
import math
import os
import subprocess
import sys
from pathlib import Path

BANDS = [(0, 30), (30, 60), (60, 100)]


def read_labels(path):
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["within_99deg"].strip() != "1":
                continue
            rows.append(
                {
                    "file": r["file"],
                    "truth": [float(r["yaw_deg"]), float(r["pitch_deg"]), float(r["roll_deg"])],
                    "box": [float(r[k]) for k in ("lmk68_xmin", "lmk68_ymin", "lmk68_xmax", "lmk68_ymax")],
                }
            )
    return rows


def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def matching_face(faces, gt):
    """The face that belongs to the labelled box, as the Rust evaluation picks it."""
    cx, cy = (gt[0] + gt[2]) / 2, (gt[1] + gt[3]) / 2
    best = None
    for f in faces:
        b = f["box"]
        inside = b[0] <= cx <= b[2] and b[1] <= cy <= b[3]
        if (iou(b, gt) >= 0.25 or inside) and (best is None or iou(b, gt) > iou(best["box"], gt)):
            best = f
    return best


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__)
    labels = Path(args[0])
    out = Path("out/eval-gst")
    props = []
    rest = args[1:]
    while rest:
        a = rest.pop(0)
        if a == "--out":
            out = Path(rest.pop(0))
        elif "=" in a:
            props.append(a)
        else:
            sys.exit(f"eval_gst.py: unknown argument {a!r}\n{__doc__}")
    rows = read_labels(labels)
    if not rows:
        sys.exit(f"eval_gst.py: no usable rows in {labels}")
    frames = out / "frames"
    frames.mkdir(parents=True, exist_ok=True)
    for old in frames.iterdir():
        old.unlink()
    for i, r in enumerate(rows):
        os.symlink((labels.parent / r["file"]).resolve(), frames / f"{i:05d}.jpg")
    jsonl = out / "faces.jsonl"
    pipeline = [
        "gst-launch-1.0", "-q",
        "multifilesrc", f"location={frames}/%05d.jpg", "index=0", f"stop-index={len(rows) - 1}",
        "caps=image/jpeg,framerate=30/1",
        "!", "jpegdec", "!", "videoconvert",
        "!", "faceposeestimator", "detection-interval=1", f"json-location={jsonl}", *props,
        "!", "fakesink",
    ]
    # The plugin as built here (`make build`), before any installed one.
    env = dict(os.environ)
    built = str(Path(__file__).resolve().parent.parent / "target" / "release")
    env["GST_PLUGIN_PATH"] = built + (":" + env["GST_PLUGIN_PATH"] if env.get("GST_PLUGIN_PATH") else "")
    print("running:", " ".join(pipeline), flush=True)
    subprocess.run(pipeline, check=True, env=env)
    # Frame lines only: the line that ends the open tracks at EOS (`tracks_ended`) is no frame.
    lines = [l for l in map(json.loads, open(jsonl)) if "pts" in l]
    if len(lines) != len(rows):
        sys.exit(f"eval_gst.py: {len(lines)} JSON lines for {len(rows)} pictures")

    found = []
    for r, frame in zip(rows, lines):
        f = matching_face(frame["faces"], r["box"])
        if f is not None:
            found.append((r, [f["yaw"], f["pitch"], f["roll"]], f.get("method"), f.get("attention")))

    def mae(sel):
        chosen = [(r, p) for r, p, _, _ in found if sel(r)]
        if not chosen:
            return 0, [float("nan")] * 4
        e = [sum(abs(p[k] - r["truth"][k]) for r, p in chosen) / len(chosen) for k in range(3)]
        return len(chosen), e + [sum(e) / 3]

    n, e = mae(lambda r: True)
    print(f"pictures: {len(rows)}  properties: {' '.join(props) or '(defaults)'}")
    print(f"detection rate: {100 * len(found) / len(rows):.2f}% ({len(found)}/{len(rows)})")
    methods = {}
    for _, _, m, _ in found:
        methods[m] = methods.get(m, 0) + 1
    print(f"methods: {methods}")
    print(f"MAE  yaw {e[0]:.2f}  pitch {e[1]:.2f}  roll {e[2]:.2f}  mean {e[3]:.2f}  (degrees)")
    for lo, hi in BANDS:
        c, b = mae(lambda r: lo <= abs(r["truth"][0]) < hi)
        print(f"  |yaw| {lo:>2}-{hi:<3}: {c:>4} faces  MAE yaw {b[0]:.2f} pitch {b[1]:.2f} roll {b[2]:.2f} mean {b[3]:.2f}")
    attention(found, props)
    print(f"wrote {jsonl}")


def off_axis(yaw, pitch):
    """Degrees between a head's forward axis and the line of sight (roll does not turn it)."""
    c = math.cos(math.radians(yaw)) * math.cos(math.radians(pitch))
    return math.degrees(math.acos(max(-1.0, min(1.0, c))))


def attention(found, props):
    """"Looking at the camera" against the labels: a labelled face looks when its forward axis is
    within the angle of its line of sight (the stills' setting, camera-fov=0, judges each face
    against its own line of sight). The element's flag at its angle, then the same rule on its
    `camera_angle` at other angles."""
    judged = [(r, a) for r, _, _, a in found if a]
    if not judged:
        print("attention: none in the JSON (an older element?)")
        return
    angle = next((float(p.split("=", 1)[1]) for p in props if p.startswith("attention-angle=")), 25.0)

    def scores(truth, said):
        tp = sum(t and s for t, s in zip(truth, said))
        fp = sum(s and not t for t, s in zip(truth, said))
        fn = sum(t and not s for t, s in zip(truth, said))
        p = tp / (tp + fp) if tp + fp else float("nan")
        r = tp / (tp + fn) if tp + fn else float("nan")
        return p, r, sum(truth)

    truth = [off_axis(r["truth"][0], r["truth"][1]) < angle for r, _ in judged]
    p, r, n = scores(truth, [a["looking_at_camera"] for _, a in judged])
    print(f"looking at the camera (attention-angle {angle:g}): precision {p:.3f} recall {r:.3f} "
          f"({n} of {len(judged)} faces looking by the labels)")
    for t in (5, 10, 15, 20, 25, 30, 40):
        truth = [off_axis(r["truth"][0], r["truth"][1]) < t for r, _ in judged]
        p, r, n = scores(truth, [a["camera_angle"] < t for _, a in judged])
        print(f"  angle {t:>2}: precision {p:.3f} recall {r:.3f} ({n} looking by the labels)")


if __name__ == "__main__":
    main()
