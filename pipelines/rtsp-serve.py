#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Serves the annotated video of pipelines/rtsp-annotated-out.txt over RTSP.

    GST_PLUGIN_PATH=target/release python3 pipelines/rtsp-serve.py [--port 8554]
    gst-launch-1.0 playbin uri=rtsp://127.0.0.1:8554/faces

Needs Debian's python3-gi, python3-gst-1.0 and gir1.2-gst-rtsp-server-1.0 (run it with the
system interpreter, /usr/bin/python3, when a virtual environment or pyenv hides them), and
x264enc from gstreamer1.0-plugins-ugly. Prints the stream's address on standard output once it
listens; stops on Ctrl-C or SIGTERM.
"""

import argparse
import os
import re
import signal
import sys

try:
    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtspServer
except (ImportError, ValueError) as e:
    sys.exit(
        f"rtsp-serve.py: {e}: install python3-gi, python3-gst-1.0 and "
        "gir1.2-gst-rtsp-server-1.0 (apt-get install -y ...), and run /usr/bin/python3"
    )

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_LAUNCH_FILE = os.path.join(HERE, "rtsp-annotated-out.txt")


def read_description(path):
    """The pipeline description of a pipelines/*.txt file: its lines without the # comments."""
    with open(path, encoding="utf-8") as f:
        lines = [l.strip() for l in f if l.strip() and not l.lstrip().startswith("#")]
    return " ".join(lines)


def replace_source(launch, source):
    """Replaces the first element of a '( src ! ... )' factory line with `source`."""
    m = re.match(r"^\s*\(\s*([^!]*?)\s*!(.*)$", launch, re.S)
    if not m:
        sys.exit(f"rtsp-serve.py: cannot find the source in: {launch}")
    rest = m.group(2).strip()
    # The caps filter after the test source belongs to videotestsrc; drop it with the source.
    if rest.startswith("video/x-raw") and "!" in rest:
        rest = rest.split("!", 1)[1].strip()
    return f"( {source} ! {rest}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--address", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    ap.add_argument("--port", type=int, default=8554, help="RTSP port (8554)")
    ap.add_argument("--mount", default="/faces", help="path of the stream (/faces)")
    ap.add_argument(
        "--launch-file",
        default=DEFAULT_LAUNCH_FILE,
        help="file holding the factory launch line (pipelines/rtsp-annotated-out.txt)",
    )
    ap.add_argument("--launch", help="factory launch line, in place of --launch-file")
    ap.add_argument(
        "--source",
        help="replaces the test source and its caps, e.g. 'v4l2src'",
    )
    ap.add_argument(
        "--shared",
        action="store_true",
        help="one pipeline for every client (default: one per client)",
    )
    args = ap.parse_args()

    Gst.init(None)
    if Gst.ElementFactory.find("faceposeestimator") is None:
        sys.exit(
            "rtsp-serve.py: no faceposeestimator element: build the plugin (cargo build "
            "--release) and set GST_PLUGIN_PATH=target/release"
        )
    launch = args.launch or read_description(args.launch_file)
    if args.source:
        launch = replace_source(launch, args.source)

    server = GstRtspServer.RTSPServer()
    server.set_address(args.address)
    server.set_service(str(args.port))
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(launch)
    factory.set_shared(args.shared)
    server.get_mount_points().add_factory(args.mount, factory)
    if server.attach(None) == 0:
        sys.exit(f"rtsp-serve.py: cannot listen on {args.address}:{args.port}")

    loop = GLib.MainLoop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, sig, loop.quit)
    print(f"rtsp://{args.address}:{server.get_bound_port()}{args.mount}", flush=True)
    print(f"serving: {launch}", file=sys.stderr, flush=True)
    loop.run()


if __name__ == "__main__":
    main()
