"""Frame graphs: each default model with its pre-processing folded in (ortenv).

For a model `<stem>.onnx` and its descriptor this writes two variants beside it:

- `<stem>.frame.onnx` for packed frames (RGB, BGR, RGBA, BGRA, RGBx, BGRx):
  `frame` uint8 [1, H, W, C] (C = 3 or 4, H and W dynamic), `channels` int64 [3] (the byte of
  R, G and B within a pixel), `maps` float32 [N, 2, 3];
- `<stem>.frame-yuv.onnx` for I420 and NV12 frames: `luma` uint8 [1, H, W], `chroma` uint8
  [1, ceil(H/2), ceil(W/2), 2] (Cb, Cr interleaved: NV12's UV plane as it is), `yuv_matrix`
  float32 [3, 3] (R, G, B rows over the Y' - 16, Cb - 128, Cr - 128 columns), `maps`.

Models with a dynamic input size (the detector) also take `size` int64 [2]: the tensor's height
and width. `maps[n]` is the affine map from tensor pixels to frame pixels of crop n: row 0 is
(a, b, tx), row 1 (c, d, ty), so that tensor pixel centre (u + 0.5, v + 0.5) samples the frame
at x = a (u + 0.5) + b (v + 0.5) + tx, y = c (u + 0.5) + d (v + 0.5) + ty, in the engine's
convention (pixel edges on integers). The graph does what the engine's host warp does
(src/engine/image/warp.rs): bilinear sampling with the edge pixels repeated over the outer half
pixel and black beyond the frame, YUV interpolated in Y'CbCr and converted with clamping, then
`(value - mean) * scale` in the model's channel order, all N crops sampled from the one frame
(the grid is reshaped to [1, N*h, w, 2], so the frame is never replicated). The original network
follows unchanged, its outputs keep their names.

Each variant is checked under onnxruntime against a numpy version of the host warp feeding the
original network.

usage: frame_graph.py <folder with the models and descriptors> <stem>...
"""

import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 16  # GridSample


def read_descriptor(path):
    values = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def triple(text):
    v = [float(x) for x in text.split()]
    return v * 3 if len(v) == 1 else v


class Builder:
    """Collects nodes and constants with unique names."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.nodes = []
        self.inits = []
        self.count = 0

    def name(self, hint):
        self.count += 1
        return f"{self.prefix}{hint}_{self.count}"

    def const(self, value, dtype=np.float32, hint="c"):
        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), n))
        return n

    def op(self, op_type, inputs, hint=None, **attrs):
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def build_sampling(b, frame_hw, source, channels_last_rgb, size_hw, d):
    """Nodes from the frame to the network input; returns the input tensor's name.

    frame_hw: int64 [2] (H, W); source: float [1, C, H, W] to sample; channels_last_rgb: turns
    the sampled [1, N*h, w, C] into R, G, B (0..255) [1, N*h, w, 3]; size_hw: int64 [2] (h, w).
    """
    f_one = b.const(1.0)
    half = b.const(0.5)
    i64 = lambda v: b.const(v, np.int64, "i")
    h = b.op("Gather", [size_hw, i64(0)], "h")
    w = b.op("Gather", [size_hw, i64(1)], "w")
    # Pixel centres of the tensor: (u + 0.5, v + 0.5, 1), v major, [h*w, 3].
    us = b.op("Add", [b.op("Cast", [b.op("Range", [i64(0), w, i64(1)])], to=TensorProto.FLOAT), half])
    vs = b.op("Add", [b.op("Cast", [b.op("Range", [i64(0), h, i64(1)])], to=TensorProto.FLOAT), half])
    hw = b.op("Concat", [b.op("Unsqueeze", [h, i64([0])]), b.op("Unsqueeze", [w, i64([0])])], axis=0)
    grid_u = b.op("Expand", [b.op("Unsqueeze", [us, i64([0])]), hw])
    grid_v = b.op("Expand", [b.op("Unsqueeze", [vs, i64([1])]), hw])
    ones = b.op("Expand", [f_one, hw])
    centres = b.op(
        "Concat",
        [b.op("Unsqueeze", [t, i64([2])]) for t in (grid_u, grid_v, ones)],
        axis=2,
    )
    centres = b.op("Reshape", [centres, i64([1, -1, 3])], "centres")
    # Frame pixel of every tensor pixel of every crop: [N, h*w, 2] (x, y).
    maps_t = b.op("Transpose", ["maps"], perm=[0, 2, 1])
    points = b.op("MatMul", [centres, maps_t], "points")
    # Frame width and height as floats, in (x, y) order.
    wh = b.op("Cast", [b.op("Gather", [frame_hw, i64([1, 0])])], to=TensorProto.FLOAT)
    # Inside the frame: 0 <= x < W and 0 <= y < H (else black, as the host warp).
    inside = b.op(
        "And",
        [b.op("GreaterOrEqual", [points, b.const(0.0)]), b.op("Less", [points, wh])],
    )
    inside = b.op("ReduceMin", [b.op("Cast", [inside], to=TensorProto.FLOAT)], axes=[2], keepdims=1)
    # GridSample's coordinates (align_corners=0): -1 is the left edge of pixel 0, +1 the right
    # edge of the last, so x - 0.5 is the sampled index, as in the host warp.
    grid = b.op("Sub", [b.op("Mul", [points, b.op("Div", [b.const(2.0), wh])]), f_one])
    neg_one = i64([-1])
    one = i64([1])
    w1 = b.op("Unsqueeze", [w, i64([0])])
    grid_shape = b.op("Concat", [one, neg_one, w1, i64([2])], axis=0)
    grid = b.op("Reshape", [grid, grid_shape], "grid")
    # Border padding repeats the edge pixels over the outer half pixel; the mask blacks out the
    # rest, which is what the host warp does (zeros padding would blend with black there).
    sampled = b.op(
        "GridSample", [source, grid], "sampled", mode="bilinear", padding_mode="border",
        align_corners=0,
    )
    sampled = b.op("Transpose", [sampled], perm=[0, 2, 3, 1])  # [1, N*h, w, C]
    rgb = channels_last_rgb(sampled)
    mask_shape = b.op("Concat", [one, neg_one, w1, one], axis=0)
    rgb = b.op("Mul", [rgb, b.op("Reshape", [inside, mask_shape])])
    # (value - mean) * scale in the model's channel order.
    order = [0, 1, 2] if d["colour"] == "rgb" else [2, 1, 0]
    if order != [0, 1, 2]:
        rgb = b.op("Gather", [rgb, i64(order)], axis=3)
    mean, scale = triple(d["mean"]), triple(d["scale"])
    value = b.op("Mul", [b.op("Sub", [rgb, b.const(mean)]), b.const(scale)])
    # [1, N*h, w, 3] -> [N, h, w, 3] (-> [N, 3, h, w]).
    h1 = b.op("Unsqueeze", [h, i64([0])])
    value = b.op("Reshape", [value, b.op("Concat", [neg_one, h1, w1, i64([3])], axis=0)])
    if d["layout"] == "nchw":
        value = b.op("Transpose", [value], perm=[0, 3, 1, 2])
    return value


def packed_front(b):
    """frame uint8 [1, H, W, C] -> (H, W), source [1, C, H, W], colour step."""
    i64 = lambda v: b.const(v, np.int64, "i")
    frame_hw = b.op("Slice", [b.op("Shape", ["frame"]), i64([1]), i64([3])], "frame_hw")
    source = b.op("Transpose", [b.op("Cast", ["frame"], to=TensorProto.FLOAT)], perm=[0, 3, 1, 2])

    def to_rgb(sampled):
        return b.op("Gather", [sampled, "channels"], "rgb", axis=3)

    inputs = [
        helper.make_tensor_value_info("frame", TensorProto.UINT8, [1, "H", "W", "C"]),
        helper.make_tensor_value_info("channels", TensorProto.INT64, [3]),
    ]
    return inputs, frame_hw, source, to_rgb


def yuv_front(b):
    """luma [1, H, W], chroma [1, H/2, W/2, 2] -> (H, W), Y'CbCr source, conversion step."""
    i64 = lambda v: b.const(v, np.int64, "i")
    shape = b.op("Shape", ["luma"])
    frame_hw = b.op("Slice", [shape, i64([1]), i64([3])], "frame_hw")
    luma = b.op("Unsqueeze", [b.op("Cast", ["luma"], to=TensorProto.FLOAT), i64([1])])
    chroma = b.op("Transpose", [b.op("Cast", ["chroma"], to=TensorProto.FLOAT)], perm=[0, 3, 1, 2])
    # Each chroma sample covers 2x2 luma pixels (nearest), cut to the luma size for odd sizes.
    chroma = b.op(
        "Resize", [chroma, "", b.const([1.0, 1.0, 2.0, 2.0])],
        mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor",
    )
    chroma = b.op("Slice", [chroma, i64([0, 0]), frame_hw, i64([2, 3])])
    source = b.op("Concat", [luma, chroma], axis=1)

    def to_rgb(sampled):
        centred = b.op("Sub", [sampled, b.const([16.0, 128.0, 128.0])])
        rgb = b.op("MatMul", [centred, b.op("Transpose", ["yuv_matrix"], perm=[1, 0])])
        return b.op("Clip", [rgb, b.const(0.0), b.const(255.0)], "rgb")

    inputs = [
        helper.make_tensor_value_info("luma", TensorProto.UINT8, [1, "H", "W"]),
        helper.make_tensor_value_info("chroma", TensorProto.UINT8, [1, "CH", "CW", 2]),
        helper.make_tensor_value_info("yuv_matrix", TensorProto.FLOAT, [3, 3]),
    ]
    return inputs, frame_hw, source, to_rgb


def frame_variant(model, d, yuv):
    """The frame graph of `model` (onnx ModelProto) described by `d`."""
    net = onnx.ModelProto()
    net.CopyFrom(model)
    g = net.graph
    net_input = d["input"]
    inner = "network_" + net_input
    for node in g.node:
        node.input[:] = [inner if i == net_input else i for i in node.input]
    old_inputs = [i for i in g.input if i.name != net_input]
    b = Builder("pre_")
    inputs, frame_hw, source, to_rgb = (yuv_front if yuv else packed_front)(b)
    inputs.append(helper.make_tensor_value_info("maps", TensorProto.FLOAT, ["N", 2, 3]))
    size = d["size"].split()
    if size[0] == "dynamic":
        inputs.append(helper.make_tensor_value_info("size", TensorProto.INT64, [2]))
        size_hw = "size"
    else:
        w, h = (int(x) for x in size[0].split("x"))
        size_hw = b.const([h, w], np.int64, "size")
    value = build_sampling(b, frame_hw, source, to_rgb, size_hw, d)
    b.nodes.append(helper.make_node("Identity", [value], [inner], name="pre_network_input"))
    nodes = b.nodes + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    g.initializer.extend(b.inits)
    del g.input[:]
    g.input.extend(inputs + old_inputs)
    for op in net.opset_import:
        if op.domain in ("", "ai.onnx"):
            op.version = max(op.version, OPSET)
    onnx.checker.check_model(net)
    return net


# ----------------------------------------------------------------- checks
def host_warp(rgb, maps, w, h, d):
    """numpy version of the engine's host warp of R, G, B (0..255, float) frames."""
    fh, fw = rgb.shape[:2]
    out = []
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    for m in maps:
        x = m[0, 0] * u + m[0, 1] * v + m[0, 2]
        y = m[1, 0] * u + m[1, 1] * v + m[1, 2]
        inside = (x >= 0) & (y >= 0) & (x < fw) & (y < fh)
        fx = np.clip(x - 0.5, 0, None)
        fy = np.clip(y - 0.5, 0, None)
        x0 = np.minimum(np.floor(fx).astype(int), fw - 1)
        y0 = np.minimum(np.floor(fy).astype(int), fh - 1)
        x1, y1 = np.minimum(x0 + 1, fw - 1), np.minimum(y0 + 1, fh - 1)
        ax, ay = (fx - x0)[..., None], (fy - y0)[..., None]
        px = (rgb[y0, x0] * (1 - ax) * (1 - ay) + rgb[y0, x1] * ax * (1 - ay)
              + rgb[y1, x0] * (1 - ax) * ay + rgb[y1, x1] * ax * ay)
        px = px * inside[..., None]
        if d["colour"] == "bgr":
            px = px[..., ::-1]
        value = (px - np.array(triple(d["mean"]))) * np.array(triple(d["scale"]))
        out.append(value.astype(np.float32))
    batch = np.stack(out)
    return batch.transpose(0, 3, 1, 2) if d["layout"] == "nchw" else batch


def reference(plain, names, d, tensors):
    """The original network's outputs, one crop at a time, stacked per output."""
    runs = [plain.run(names, {d["input"]: t[None]}) for t in tensors]
    return [np.concatenate([r[i] for r in runs]) for i in range(len(names))]


def check(folder, stem, d, picture):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    plain = ort.InferenceSession(str(folder / f"{stem}.onnx"), opts, providers=["CPUExecutionProvider"])
    packed = ort.InferenceSession(str(folder / f"{stem}.frame.onnx"), opts, providers=["CPUExecutionProvider"])
    yuv = ort.InferenceSession(str(folder / f"{stem}.frame-yuv.onnx"), opts, providers=["CPUExecutionProvider"])
    fh, fw = picture.shape[:2]
    size = d["size"].split()
    if size[0] == "dynamic":
        s = 320 / max(fw, fh)
        w = -(-round(fw * s) // 32) * 32
        h = -(-round(fh * s) // 32) * 32
        maps = np.array([[[1 / s, 0, 0], [0, 1 / s, 0]]], np.float32)
        extra = {"size": np.array([h, w], np.int64)}
    else:
        w, h = (int(x) for x in size[0].split("x"))
        side = min(fw, fh) * 0.6
        a = np.deg2rad(25)
        k = side / w
        maps = np.array([
            # upright, centred
            [[k, 0, fw / 2 - side / 2], [0, k, fh / 2 - side / 2]],
            # rotated and mirrored
            [[-k * np.cos(a), -k * np.sin(a), fw / 2 + side / 2], [-k * np.sin(a), k * np.cos(a), fh / 2 - side / 2]],
            # partly outside the frame
            [[k, 0, -side / 3], [0, k, fh - side * 0.7]],
        ], np.float32)
        extra = {}
    names = [o.name for o in plain.get_outputs()]
    want = reference(plain, names, d, host_warp(picture.astype(np.float32), maps, w, h, d))
    rgbx = np.concatenate([picture[..., ::-1], np.full((fh, fw, 1), 255, np.uint8)], axis=2)
    got_packed = packed.run(names, {"frame": rgbx[None], "channels": np.array([2, 1, 0], np.int64), "maps": maps, **extra})
    worst = max(float(np.abs(a - b).max() / max(1.0, float(np.abs(b).max()))) for a, b in zip(got_packed, want))
    if worst > 2e-3:
        raise SystemExit(f"{stem}.frame.onnx differs from the host warp + network by {worst}")
    # YUV: an RGB frame through BT.601 to Y'CbCr 4:2:0 and back in the graph, against the same
    # round trip done in numpy before the host warp.
    ycc, rgb_back, luma, chroma, matrix = yuv_round_trip(picture)
    want = reference(plain, names, d, host_warp(rgb_back, maps, w, h, d))
    got_yuv = yuv.run(names, {"luma": luma[None], "chroma": chroma[None], "yuv_matrix": matrix, "maps": maps, **extra})
    del ycc
    worst_yuv = max(float(np.abs(a - b).max() / max(1.0, float(np.abs(b).max()))) for a, b in zip(got_yuv, want))
    # The numpy reference converts per pixel before sampling; the graph samples Y'CbCr and then
    # converts (as the engine does): the two agree to rounding and clamping at strong edges.
    if worst_yuv > 0.05:
        raise SystemExit(f"{stem}.frame-yuv.onnx differs from the host warp + network by {worst_yuv}")
    return worst, worst_yuv


BT601 = np.array([[1.164, 0.0, 1.596], [1.164, -0.392, -0.813], [1.164, 2.017, 0.0]], np.float32)


def yuv_round_trip(picture):
    rgb = picture.astype(np.float32)
    fh, fw = rgb.shape[:2]
    inv = np.linalg.inv(BT601)
    ycc = rgb @ inv.T + np.array([16, 128, 128])
    ycc = np.clip(np.round(ycc), 0, 255).astype(np.uint8)
    luma = ycc[..., 0]
    ch = ycc[: fh - fh % 2: 2, : fw - fw % 2: 2, 1:]
    up = np.repeat(np.repeat(ch, 2, 0), 2, 1)
    full = np.concatenate([luma[: up.shape[0], : up.shape[1], None].astype(np.float32), up.astype(np.float32)], axis=2)
    back = np.clip((full - np.array([16, 128, 128])) @ BT601.T, 0, 255)
    return ycc, back, np.ascontiguousarray(luma[: up.shape[0], : up.shape[1]]), np.ascontiguousarray(ch), BT601


def test_picture(h=300, w=400):
    """A seeded picture with smooth shapes and fine texture (odd features at the edges)."""
    rng = np.random.default_rng(11)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = np.stack([
        128 + 100 * np.sin(x / 37.0) * np.cos(y / 23.0),
        128 + 90 * np.cos((x + y) / 51.0),
        128 + 80 * np.sin(np.hypot(x - w / 2, y - h / 2) / 19.0),
    ], axis=2)
    noise = rng.normal(0, 12, (h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def main():
    folder = Path(sys.argv[1])
    for stem in sys.argv[2:]:
        d = read_descriptor(folder / f"{stem}.descriptor")
        model = onnx.load(str(folder / f"{stem}.onnx"))
        for yuv, suffix in ((False, "frame"), (True, "frame-yuv")):
            onnx.save(frame_variant(model, d, yuv), str(folder / f"{stem}.{suffix}.onnx"))
        worst, worst_yuv = check(folder, stem, d, test_picture())
        print(f"[frame-graph] {stem}: .frame.onnx within {worst:.1e}, .frame-yuv.onnx within "
              f"{worst_yuv:.1e} of the host warp + network (relative)")


if __name__ == "__main__":
    main()
