#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Prints the faces that faceposeestimator attaches to buffers, one JSON line per buffer.

    GST_PLUGIN_PATH=target/release python3 examples/read_metas.py
    GST_PLUGIN_PATH=target/release python3 examples/read_metas.py --pipeline \
        "filesrc location=in.mp4 ! decodebin ! videoconvert ! faceposeestimator ! appsink name=sink"

Each line: {"frame", "pts" (ns or null), "face_count" (from the per-frame FacePoseMeta, null
without it), "faces": [{"id", "confidence", "x_min", "y_min", "x_max", "y_max" (normalised),
"yaw", "pitch", "roll" (degrees), "method", "presence", "looking" (bool), "camera_angle"
(degrees off the direction to the camera), "z_cm" (distance along the camera's axis, null without a
field of view)}]}, the faces read from the GstVideoRegionOfInterestMeta of each face (roi_type
"face", params "detection", "head-pose" and "attention").

Needs Debian's python3-gi, python3-gst-1.0 and gir1.2-gst-plugins-base-1.0 (the system
interpreter, /usr/bin/python3, when a virtual environment or pyenv hides them).

With the GStreamer 1.22 bindings, Gst.Buffer.foreach_meta cannot be used from Python (it needs a
writable buffer and hands the callback no meta), and a Gst.Meta from buffer.get_meta() cannot be
cast to GstVideo.VideoRegionOfInterestMeta. What works: buffer.get_n_meta(api) counts the ROI
metas, and GstVideo.buffer_get_video_region_of_interest_meta_id(buffer, id) returns each one as
a GstVideo.VideoRegionOfInterestMeta, whose get_param(name) returns a Gst.Structure. The element
numbers a frame's faces 0, 1, 2, ... so looking ids up in turn finds them all.
buffer.get_custom_meta("FacePoseMeta").get_structure() gives the per-frame structure.
"""

import argparse
import json
import math
import os
import sys

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstVideo", "1.0")
    from gi.repository import GLib, Gst, GstVideo
except (ImportError, ValueError) as e:
    sys.exit(
        f"read_metas.py: {e}: install python3-gi, python3-gst-1.0 and "
        "gir1.2-gst-plugins-base-1.0 (apt-get install -y ...), and run /usr/bin/python3"
    )

FRAME_META = "FacePoseMeta"
ROI_TYPE = "face"
# How many ids past the last face found to keep looking, in case other elements add ROI metas.
ID_SLACK = 16


def default_pipeline():
    models = os.environ.get("FACEPOSE_MODEL_DIR") or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "models"
    )
    picture = os.path.normpath(os.path.join(models, "samples", "astronaut.png"))
    return (
        f'filesrc location="{picture}" ! pngdec ! imagefreeze num-buffers=5 ! videoconvert '
        "! faceposeestimator ! appsink name=sink sync=false"
    )


def number(s, field):
    """A double field of a Gst.Structure, or None."""
    if s is None:
        return None
    ok, v = s.get_double(field)
    return v if ok and math.isfinite(v) else None


def boolean(s, field):
    """A boolean field of a Gst.Structure, or None."""
    if s is None:
        return None
    ok, v = s.get_boolean(field)
    return v if ok else None


def roi_faces(buffer):
    """The faces of a buffer, from its GstVideoRegionOfInterestMeta (roi_type "face")."""
    api = GstVideo.VideoRegionOfInterestMeta.get_info().api
    wanted = buffer.get_n_meta(api)
    faces = []
    seen = 0
    next_id = 0
    last_hit = -1
    while seen < wanted and next_id <= last_hit + ID_SLACK:
        meta = GstVideo.buffer_get_video_region_of_interest_meta_id(buffer, next_id)
        if meta is not None:
            seen += 1
            last_hit = next_id
            if GLib.quark_to_string(meta.roi_type) == ROI_TYPE:
                det = meta.get_param("detection")
                pose = meta.get_param("head-pose")
                attention = meta.get_param("attention")
                faces.append(
                    {
                        "id": meta.id,
                        "confidence": number(det, "confidence"),
                        "x_min": number(det, "x_min"),
                        "y_min": number(det, "y_min"),
                        "x_max": number(det, "x_max"),
                        "y_max": number(det, "y_max"),
                        "yaw": number(pose, "yaw"),
                        "pitch": number(pose, "pitch"),
                        "roll": number(pose, "roll"),
                        "method": pose.get_string("method") if pose is not None else None,
                        "presence": number(pose, "presence"),
                        "looking": boolean(attention, "looking"),
                        "camera_angle": number(attention, "camera-angle"),
                        "z_cm": number(attention, "z"),
                    }
                )
        next_id += 1
    return faces


def face_count(buffer):
    """face-count of the per-frame FacePoseMeta, or None without one."""
    meta = buffer.get_custom_meta(FRAME_META)
    if meta is None:
        return None
    ok, n = meta.get_structure().get_uint("face-count")
    return n if ok else None


def run(description, timeout_s):
    Gst.init(None)
    if Gst.ElementFactory.find("faceposeestimator") is None:
        sys.exit(
            "read_metas.py: no faceposeestimator element: build the plugin (cargo build "
            "--release) and set GST_PLUGIN_PATH=target/release"
        )
    try:
        pipeline = Gst.parse_launch(description)
    except GLib.Error as e:
        sys.exit(f"read_metas.py: bad pipeline: {e.message}")
    sink = pipeline.get_by_name("sink") if isinstance(pipeline, Gst.Bin) else None
    if sink is None or sink.get_factory().get_name() != "appsink":
        sys.exit("read_metas.py: the pipeline needs an appsink named sink")
    bus = pipeline.get_bus()

    def fail(msg):
        pipeline.set_state(Gst.State.NULL)
        sys.exit(f"read_metas.py: {msg}")

    pipeline.set_state(Gst.State.PLAYING)
    deadline = None if timeout_s is None else GLib.get_monotonic_time() + timeout_s * 1e6
    frame = 0
    while True:
        sample = sink.emit("try-pull-sample", 50 * Gst.MSECOND)
        if sample is not None:
            buffer = sample.get_buffer()
            pts = buffer.pts if buffer.pts != Gst.CLOCK_TIME_NONE else None
            line = {
                "frame": frame,
                "pts": pts,
                "face_count": face_count(buffer),
                "faces": roi_faces(buffer),
            }
            print(json.dumps(line), flush=True)
            frame += 1
            continue
        msg = bus.pop_filtered(Gst.MessageType.ERROR)
        if msg is not None:
            err, debug = msg.parse_error()
            fail(f"error from {msg.src.get_path_string()}: {err.message} ({debug})")
        if sink.get_property("eos"):
            break
        if deadline is not None and GLib.get_monotonic_time() > deadline:
            fail(f"no EOS after {timeout_s} s")
    pipeline.set_state(Gst.State.NULL)
    return frame


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--pipeline",
        help="pipeline ending in an appsink named sink (default: the astronaut picture, 5 frames)",
    )
    ap.add_argument("--timeout", type=float, help="fail after this many seconds")
    args = ap.parse_args()
    run(args.pipeline or default_pipeline(), args.timeout)


if __name__ == "__main__":
    main()
