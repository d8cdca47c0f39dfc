#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""The analytics meta read from Python (GI GstAnalytics, GStreamer >= 1.24): for every frame of
the astronaut picture, one object-detection Mtd of type "face" with a box and confidence, a
tracking Mtd and two classification Mtds (labels yaw:…, pitch:…, roll:…, then looking or
not-looking) related to it. Needs the
plugin built with --features analytics on GST_PLUGIN_PATH (make test-analytics runs it)."""

import pathlib
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstAnalytics", "1.0")
from gi.repository import GLib, Gst, GstAnalytics  # noqa: E402

FRAMES = 3
PICTURE = pathlib.Path(__file__).resolve().parent.parent / "models/samples/astronaut.png"


def faces(buffer):
    """[(box, confidence, track id, labels)] of the buffer's face detections."""
    meta = GstAnalytics.buffer_get_analytics_relation_meta(buffer)
    assert meta is not None, "no GstAnalyticsRelationMeta on the buffer"
    count = GstAnalytics.relation_get_length(meta)
    out = []
    for od_id in range(count):
        ok, od = meta.get_od_mtd(od_id)
        if not ok or GLib.quark_to_string(od.get_obj_type()) != "face":
            continue
        ok, x, y, w, h, conf = od.get_location()
        assert ok
        track, labels = None, []
        for other in range(count):
            if meta.get_relation(od_id, other) != GstAnalytics.RelTypes.RELATE_TO:
                continue
            ok, trk = meta.get_tracking_mtd(other)
            if ok:
                track = trk.get_info()[1]
            ok, cls = meta.get_cls_mtd(other)
            if ok:
                labels += [GLib.quark_to_string(cls.get_quark(i)) for i in range(cls.get_length())]
        out.append(((x, y, w, h), conf, track, labels))
    return out


def main():
    Gst.init(None)
    if Gst.ElementFactory.find("faceposeestimator") is None:
        sys.exit("faceposeestimator is not on GST_PLUGIN_PATH")
    pipeline = Gst.parse_launch(
        f'filesrc location="{PICTURE}" ! pngdec ! imagefreeze num-buffers={FRAMES} ! '
        "videoconvert ! faceposeestimator ! appsink name=sink sync=false"
    )
    sink = pipeline.get_by_name("sink")
    pipeline.set_state(Gst.State.PLAYING)
    seen = 0
    while True:
        sample = sink.emit("pull-sample")
        if sample is None:
            break
        found = faces(sample.get_buffer())
        assert len(found) == 1, f"expected one face, got {found}"
        (x, y, w, h), conf, track, labels = found[0]
        assert w > 50 and h > 50 and 0.5 < conf <= 1.0, found
        assert track is not None, "no tracking Mtd related to the face"
        # The pose's classification, then the attention one.
        assert [label.split(":")[0] for label in labels[:3]] == ["yaw", "pitch", "roll"], labels
        for label in labels[:3]:
            float(label.split(":")[1])
        assert labels[3:] in (["looking"], ["not-looking"]), labels
        print(f"[analytics_read.py] frame {seen}: face box ({x}, {y}, {w}, {h}) confidence {conf:.3f} "
              f"track {track} {' '.join(labels)}")
        seen += 1
    pipeline.set_state(Gst.State.NULL)
    assert seen == FRAMES, f"{seen} frames"
    print("[analytics_read.py] OK")


if __name__ == "__main__":
    main()
