"""Check the staged ONNX models under onnxruntime (runs in ortenv).

Usage: python ort_verify.py CACHE_DIR STAGE_DIR

Compares against CACHE_DIR/refs.npz (TensorFlow / TFLite outputs) and
CACHE_DIR/refs_whenet.npz (Keras), checks IO names and shapes, the RetinaFace
Resize rewrite, FaceMesh and WHENet batching, ORT warnings and a few sanity
facts on the sample pictures. Prints a
summary table; exits 1 if anything is off.
"""

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

EXPECTED_ORT = "1.31.1"
ATOL = 1e-3  # abs tolerance, scaled by max(1, |reference|) for large values

SPEC = {
    "retinaface_mbv2.onnx": {
        "inputs": {"input": [1, "H", "W", 3]},
        "outputs": {"bbox": [1, "P", 4], "landmark": [1, "P", 10], "conf": [1, "P", 2]},
    },
    "face_landmark.onnx": {
        "inputs": {"input": ["N", 192, 192, 3]},
        "outputs": {"landmarks": ["N", 1, 1, 1404], "face_flag": ["N", 1, 1, 1]},
    },
    "blazeface_full.onnx": {
        "inputs": {"input": [1, 192, 192, 3]},
        "outputs": {"regressors": [1, 2304, 16], "classificators": [1, 2304, 1]},
    },
    "whenet.onnx": {
        "inputs": {"input": ["N", 224, 224, 3]},
        "outputs": {"yaw": ["N", 120], "pitch": ["N", 66], "roll": ["N", 66]},
    },
}
WHENET_ATOL = 1e-3     # plain absolute tolerance on WHENet's logits
WHENET_FRONTAL = 20.0  # the astronaut looks near frontal: every angle below this

failures = []
rows = []


def log(msg):
    print(f"[models]   {msg}", flush=True)


def check(ok, msg):
    if not ok:
        failures.append(msg)
        print(f"[models] FAIL: {msg}", file=sys.stderr, flush=True)
    return ok


class StderrCapture:
    """Collect what native code writes to fd 2 (ORT's logger) meanwhile."""

    def __enter__(self):
        sys.stderr.flush()
        self.tmp = tempfile.TemporaryFile(mode="w+b")
        self.saved = os.dup(2)
        os.dup2(self.tmp.fileno(), 2)
        return self

    def __exit__(self, *exc):
        sys.stderr.flush()
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.tmp.seek(0)
        self.text = self.tmp.read().decode(errors="replace")
        self.tmp.close()


def session(path, severity=2):
    so = ort.SessionOptions()
    so.log_severity_level = severity  # 2: warnings and up
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def warnings_of(path, feeds):
    """ORT warning lines printed while loading `path` and running it on feeds."""
    with StderrCapture() as cap:
        s = session(path)
        for f in feeds:
            s.run(None, f)
    return [ln for ln in cap.text.splitlines() if "[W:" in ln or "deprecat" in ln.lower()]


def dims(vi):
    return [d.dim_param if d.dim_param else d.dim_value
            for d in vi.type.tensor_type.shape.dim]


def diff(a, b):
    a = np.asarray(a, np.float64)
    b = np.asarray(b, np.float64)
    if a.shape != b.shape:
        return float("inf"), float("inf")
    d = np.abs(a - b)
    return float(d.max()), float((d / np.maximum(1.0, np.abs(b))).max())


def compare(model, key, got, refs, names):
    worst_abs = worst_scaled = 0.0
    for name, g in zip(names, got):
        ref = refs[f"{key}/{name}"]
        check(g.shape == ref.shape, f"{model} {key} {name}: shape {g.shape} != {ref.shape}")
        a, s = diff(g, ref)
        worst_abs, worst_scaled = max(worst_abs, a), max(worst_scaled, s)
        check(s < ATOL, f"{model} {key} {name}: max diff {a:.3g} (scaled {s:.3g}) >= {ATOL}")
    return worst_abs, worst_scaled


def main():
    cache, stage = Path(sys.argv[1]), Path(sys.argv[2])
    check(ort.__version__ == EXPECTED_ORT, f"onnxruntime {ort.__version__} != {EXPECTED_ORT}")
    refs = dict(np.load(cache / "refs.npz"))
    refs.update(np.load(cache / "refs_whenet.npz"))
    keys = lambda pre: sorted({k.split("/")[1] for k in refs if k.startswith(pre + "/")})

    # ---- IO names, shapes, opset
    for name, spec in SPEC.items():
        m = onnx.load(str(stage / name))
        opset = {o.domain: o.version for o in m.opset_import}.get("", 0)
        check(opset == 13, f"{name}: opset {opset} != 13")
        got_in = {i.name: dims(i) for i in m.graph.input}
        got_out = {o.name: dims(o) for o in m.graph.output}
        check(got_in == spec["inputs"], f"{name}: inputs {got_in} != {spec['inputs']}")
        check(got_out == spec["outputs"], f"{name}: outputs {got_out} != {spec['outputs']}")

    # ---- RetinaFace
    rf_path = stage / "retinaface_mbv2.onnx"
    rf = session(rf_path)
    rf_names = ["bbox", "landmark", "conf"]
    worst = [0.0, 0.0]
    rf_out = {}
    for key in keys("rf"):
        x = refs[f"rf/{key}/input"]
        got = rf.run(rf_names, {"input": x})
        rf_out[key] = got
        a, s = compare("retinaface", f"rf/{key}", got, refs, rf_names)
        worst = [max(worst[0], a), max(worst[1], s)]
    # Resize rewrite: bit-identical to tf2onnx's deprecated form, also on
    # sizes that are not multiples of 32 (where the upsampling is not 2x).
    ort.set_default_logger_severity(3)  # the raw form's known warning, counted below
    raw = session(cache / "raw" / "retinaface_mbv2.onnx", severity=3)
    rng = np.random.default_rng(1)
    same_inputs = [refs[f"rf/{k}/input"] for k in keys("rf")] + [
        rng.uniform(0, 255, (1, h, w, 3)).astype(np.float32)
        for h, w in ((250, 333), (300, 200), (97, 161))]
    rewrite_max = 0.0
    for x in same_inputs:
        for a, b in zip(raw.run(rf_names, {"input": x}), rf.run(rf_names, {"input": x})):
            rewrite_max = max(rewrite_max, float(np.abs(a - b).max()) if a.shape == b.shape else np.inf)
    check(rewrite_max == 0.0, f"retinaface: Resize rewrite changed outputs (max diff {rewrite_max})")
    ort.set_default_logger_severity(2)
    feeds = [{"input": same_inputs[0]}]
    w_raw = warnings_of(cache / "raw" / "retinaface_mbv2.onnx", feeds)
    w_new = warnings_of(rf_path, feeds)
    check(not w_new, "retinaface: ORT warnings: " + " | ".join(w_new))
    log(f"RetinaFace: tf2onnx's raw Resize form gives {len(w_raw)} ORT warning(s); "
        f"rewritten model gives {len(w_new)}; outputs identical (max diff {rewrite_max})")
    # Sanity: astronaut -> exactly one cluster of priors with face score > 0.9.
    b, lm, c = rf_out["astronaut"]
    h, w = refs["rf/astronaut/input"].shape[1:3]
    boxes, _ = common.retinaface_decode(b[0], lm[0], h, w)
    hi = c[0, :, 1] > 0.9
    clusters = common.nms(boxes[hi], c[0, hi, 1], 0.4)
    check(len(clusters) == 1, f"retinaface: astronaut gives {len(clusters)} clusters with conf > 0.9")
    faces = common.retinaface_faces(b, lm, c, h, w)
    fb = faces[0][1] if faces else [np.nan] * 4
    P = b.shape[1]
    check(P == len(common.retinaface_priors(h, w)), "retinaface: prior count mismatch")
    rows.append(("retinaface_mbv2.onnx", f"input [1,H,W,3]; astronaut {h}x{w}: "
                 f"bbox/landmark/conf [1,{P},4|10|2]", worst,
                 f"{int(hi.sum())} priors >0.9 -> {len(clusters)} face, score {faces[0][0]:.4f}, "
                 f"box ({fb[0]:.0f},{fb[1]:.0f})-({fb[2]:.0f},{fb[3]:.0f})"))

    # ---- FaceMesh
    fm_path = stage / "face_landmark.onnx"
    fm = session(fm_path)
    fm_names = ["landmarks", "face_flag"]
    worst = [0.0, 0.0]
    singles = {}
    for key in keys("fm"):
        got = fm.run(fm_names, {"input": refs[f"fm/{key}/input"]})
        singles[key] = got
        a, s = compare("facemesh", f"fm/{key}", got, refs, fm_names)
        worst = [max(worst[0], a), max(worst[1], s)]
    order = keys("fm")
    batch = np.concatenate([refs[f"fm/{k}/input"] for k in order])
    bl, bf = fm.run(fm_names, {"input": batch})
    check(bl.shape == (3, 1, 1, 1404) and bf.shape == (3, 1, 1, 1),
          f"facemesh: batch-3 output shapes {bl.shape} {bf.shape}")
    batch_max = 0.0
    for i, k in enumerate(order):
        batch_max = max(batch_max, diff(bl[i:i + 1], singles[k][0])[0],
                        diff(bf[i:i + 1], singles[k][1])[0])
        a, s = compare("facemesh(batch)", f"fm/{k}", [bl[i:i + 1], bf[i:i + 1]], refs, fm_names)
        worst = [max(worst[0], a), max(worst[1], s)]
    check(batch_max < ATOL, f"facemesh: batch of 3 differs from single runs by {batch_max}")
    w_fm = warnings_of(fm_path, [{"input": batch}])
    check(not w_fm, "facemesh: ORT warnings: " + " | ".join(w_fm))
    flag = {k: float(common.sigmoid(singles[k][1]).ravel()[0]) for k in order}
    check(flag["astronaut"] > 0.9, f"facemesh: face_flag on astronaut face {flag['astronaut']:.4f} <= 0.9")
    check(flag["grace"] > 0.9, f"facemesh: face_flag on Grace Hopper face {flag['grace']:.4f} <= 0.9")
    check(flag["noise"] < 0.1, f"facemesh: face_flag on noise {flag['noise']:.4f} >= 0.1")
    rows.append(("face_landmark.onnx", "input [N,192,192,3]; landmarks [N,1,1,1404], "
                 "face_flag [N,1,1,1]", worst,
                 "sigmoid(face_flag): " + ", ".join(f"{k} {v:.4f}" for k, v in flag.items())
                 + f"; batch-3 vs single max diff {batch_max:.2g}"))

    # Canonical face axes against the model's own landmarks on a frontal face:
    # image x grows right, image y grows down, FaceMesh z is negative toward
    # the camera.
    can = np.loadtxt(stage / "canonical_face.txt", comments="#")
    check(can.shape == (468, 4), f"canonical_face.txt: shape {can.shape}")
    pts = singles["astronaut"][0].reshape(468, 3)
    corr = [float(np.corrcoef(can[:, i], pts[:, i])[0, 1]) for i in range(3)]
    check(corr[0] > 0.9 and corr[1] < -0.9 and corr[2] < -0.5,
          f"canonical_face.txt axes disagree with FaceMesh on the astronaut: corr {corr}")
    nz = int((can[:, 3] != 0).sum())
    rows.append(("canonical_face.txt", "468 x (x y z w), cm", None,
                 f"{nz} nonzero weights; corr with FaceMesh x {corr[0]:+.3f}, "
                 f"y {corr[1]:+.3f}, z {corr[2]:+.3f} (x right, y up, z toward viewer)"))

    # ---- BlazeFace full range
    bf_path = stage / "blazeface_full.onnx"
    bfs = session(bf_path)
    bf_names = ["regressors", "classificators"]
    worst = [0.0, 0.0]
    bf_out = {}
    for key in keys("bf"):
        got = bfs.run(bf_names, {"input": refs[f"bf/{key}/input"]})
        bf_out[key] = got
        a, s = compare("blazeface", f"bf/{key}", got, refs, bf_names)
        worst = [max(worst[0], a), max(worst[1], s)]
    w_bf = warnings_of(bf_path, [{"input": refs["bf/noise/input"]}])
    check(not w_bf, "blazeface: ORT warnings: " + " | ".join(w_bf))
    score = {k: float(common.sigmoid(np.clip(v[1], -80, 80)).max()) for k, v in bf_out.items()}
    check(score["astronaut"] > 0.5, f"blazeface: best score on astronaut {score['astronaut']:.3f}")
    r, c = bf_out["astronaut"]
    rows.append(("blazeface_full.onnx", f"input [1,192,192,3]; regressors {list(r.shape)}, "
                 f"classificators {list(c.shape)}", worst,
                 "best sigmoid score: " + ", ".join(f"{k} {v:.3f}" for k, v in score.items())))

    # ---- WHENet (Keras reference; logits, decoded here as the plugin does)
    wh_path = stage / "whenet.onnx"
    wh = session(wh_path)
    wh_names = ["yaw", "pitch", "roll"]
    worst = [0.0, 0.0]
    wh_out = {}
    order = keys("wh")
    for key in order:
        got = wh.run(wh_names, {"input": refs[f"wh/{key}/input"]})
        wh_out[key] = got
        a, s = compare("whenet", f"wh/{key}", got, refs, wh_names)
        worst = [max(worst[0], a), max(worst[1], s)]
        check(a <= WHENET_ATOL, f"whenet {key}: max abs diff {a:.3g} > {WHENET_ATOL}")
    batch = np.concatenate([refs[f"wh/{k}/input"] for k in order])
    bo = wh.run(wh_names, {"input": batch})
    check([o.shape for o in bo] == [(len(order), n) for n in (120, 66, 66)],
          f"whenet: batch-{len(order)} output shapes {[o.shape for o in bo]}")
    batch_max = 0.0
    for i, k in enumerate(order):
        batch_max = max(batch_max, *(diff(o[i:i + 1], r)[0] for o, r in zip(bo, wh_out[k])))
        a, s = compare("whenet(batch)", f"wh/{k}", [o[i:i + 1] for o in bo], refs, wh_names)
        check(a <= WHENET_ATOL, f"whenet(batch) {k}: max abs diff {a:.3g} > {WHENET_ATOL}")
        worst = [max(worst[0], a), max(worst[1], s)]
    check(batch_max < ATOL, f"whenet: batch of {len(order)} differs from single runs by {batch_max}")
    w_wh = warnings_of(wh_path, [{"input": batch}])
    check(not w_wh, "whenet: ORT warnings: " + " | ".join(w_wh))
    ang = {k: common.whenet_angles(*wh_out[k])[0] for k in order}
    ref_ang = {k: common.whenet_angles(*(refs[f"wh/{k}/{n}"] for n in wh_names))[0] for k in order}
    ang_max = max(float(np.abs(ang[k] - ref_ang[k]).max()) for k in order)
    check(ang_max < 0.01, f"whenet: decoded angles differ from Keras by {ang_max:.3g} deg")
    # Logits, not probabilities: the heads are linear, so rows are not
    # distributions (negative entries, sums far from 1).
    raw = np.concatenate([np.concatenate(wh_out[k], axis=1) for k in order])
    check(raw.min() < 0, "whenet: outputs look like probabilities, expected logits")
    a = ang["astronaut"]
    check(bool(np.all(np.abs(a) < WHENET_FRONTAL)),
          f"whenet: astronaut (near frontal) gives yaw/pitch/roll {a.round(1).tolist()}")
    rows.append(("whenet.onnx", "input [N,224,224,3]; yaw [N,120], pitch [N,66], roll [N,66] (logits)",
                 worst, "yaw/pitch/roll deg: " + ", ".join(
                     f"{k} {v[0]:+.1f}/{v[1]:+.1f}/{v[2]:+.1f}" for k, v in ang.items() if k != "noise")
                 + f"; batch-{len(order)} vs single max diff {batch_max:.2g}"))

    # ---- summary
    print("[models] summary (onnxruntime %s vs TensorFlow/TFLite; diff = max |onnx - ref|, "
          "scaled = / max(1,|ref|))" % ort.__version__)
    for name, shapes, wst, note in rows:
        d = "-" if wst is None else f"abs {wst[0]:.2e} scaled {wst[1]:.2e}"
        print(f"[models]   {name:22s} {shapes}")
        print(f"[models]   {'':22s} diff: {d}; {note}")
    if failures:
        print(f"[models] ERROR: verification failed ({len(failures)} problem(s)):", file=sys.stderr)
        for f in failures:
            print(f"[models]   - {f}", file=sys.stderr)
        sys.exit(1)
    print("[models] verification passed")


if __name__ == "__main__":
    main()
