"""Shared numpy-only helpers for the model recipe (used from both venvs).

Nothing here imports TensorFlow or onnxruntime, so the reference side
(tfenv) and the checking side (ortenv) decode outputs the same way.
"""

import math

import numpy as np

# RetinaFace MobileNetV2 prior layout: one level per stride, two anchor sizes
# per cell, ordered level -> row -> column -> size.
RF_STRIDES = (8, 16, 32)
RF_MIN_SIZES = ((16, 32), (64, 128), (256, 512))
RF_VARIANCES = (0.1, 0.2)


def pad_to_multiple(img, multiple=32):
    """Zero-pad an HxWx3 array at the bottom/right to multiples of `multiple`."""
    h, w = img.shape[:2]
    ph = (multiple - h % multiple) % multiple
    pw = (multiple - w % multiple) % multiple
    return np.pad(img, ((0, ph), (0, pw), (0, 0)))


def retinaface_priors(h, w):
    """Priors as (cx, cy, sw, sh), normalised to the padded input size."""
    out = []
    for stride, sizes in zip(RF_STRIDES, RF_MIN_SIZES):
        rows, cols = math.ceil(h / stride), math.ceil(w / stride)
        for i in range(rows):
            for j in range(cols):
                cx = (j + 0.5) * stride / w
                cy = (i + 0.5) * stride / h
                for m in sizes:
                    out.append((cx, cy, m / w, m / h))
    return np.asarray(out, dtype=np.float64)


def retinaface_decode(bbox, landmark, h, w):
    """Decode raw heads ([P,4], [P,10]) into pixel boxes [P,4] (x1,y1,x2,y2)
    and points [P,5,2]."""
    pr = retinaface_priors(h, w)
    assert pr.shape[0] == bbox.shape[0], (pr.shape, bbox.shape)
    v0, v1 = RF_VARIANCES
    c = pr[:, :2] + bbox[:, :2] * v0 * pr[:, 2:]
    s = pr[:, 2:] * np.exp(bbox[:, 2:] * v1)
    boxes = np.concatenate([c - s / 2, c + s / 2], axis=1) * [w, h, w, h]
    pts = pr[:, None, :2] + landmark.reshape(-1, 5, 2) * v0 * pr[:, None, 2:]
    return boxes, pts * [w, h]


def iou(a, b):
    """IoU of one box a [4] against boxes b [N,4]."""
    x1 = np.maximum(a[0], b[:, 0])
    y1 = np.maximum(a[1], b[:, 1])
    x2 = np.minimum(a[2], b[:, 2])
    y2 = np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda z: (z[..., 2] - z[..., 0]) * (z[..., 3] - z[..., 1])
    return inter / np.maximum(area(a) + area(b) - inter, 1e-9)


def nms(boxes, scores, thr):
    """Greedy NMS; returns kept indices, best first."""
    order = np.argsort(-scores)
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        if order.size == 1:
            break
        rest = order[1:]
        order = rest[iou(boxes[i], boxes[rest]) <= thr]
    return keep


def retinaface_faces(bbox, landmark, conf, h, w, score_thr=0.5, iou_thr=0.4):
    """Full decode of one image's raw outputs -> list of (score, box, points)."""
    bbox, landmark, conf = bbox[0], landmark[0], conf[0]
    boxes, pts = retinaface_decode(bbox, landmark, h, w)
    score = conf[:, 1]
    idx = np.nonzero(score > score_thr)[0]
    keep = nms(boxes[idx], score[idx], iou_thr)
    return [(float(score[idx[k]]), boxes[idx[k]], pts[idx[k]]) for k in keep]


def square_crop_box(box, scale=1.5):
    """Square (x0, y0, side) centred on box, side = scale * longer box side."""
    x1, y1, x2, y2 = box
    side = scale * max(x2 - x1, y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return cx - side / 2, cy - side / 2, side


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


# WHENet head-pose bins: the Dense heads give one logit per bin; the angle is
# the softmax expectation of the bin index times the step, plus the offset.
WHENET_BINS = {"yaw": (120, 3.0, -180.0), "pitch": (66, 3.0, -99.0), "roll": (66, 3.0, -99.0)}
IMAGENET_MEAN = (123.675, 116.28, 103.53)  # 255 * (0.485, 0.456, 0.406)
IMAGENET_STD = (58.395, 57.12, 57.375)     # 255 * (0.229, 0.224, 0.225)


def imagenet_normalise(rgb):
    """HxWx3 or NxHxWx3 RGB 0..255 -> float32 (x/255 - mean) / std."""
    x = np.asarray(rgb, dtype=np.float32)
    return ((x - np.float32(IMAGENET_MEAN)) / np.float32(IMAGENET_STD)).astype(np.float32)


def softmax(x, axis=-1):
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def whenet_angles(yaw, pitch, roll):
    """Logits [N,120], [N,66], [N,66] -> degrees [N,3] (yaw, pitch, roll)."""
    out = []
    for name, logits in (("yaw", yaw), ("pitch", pitch), ("roll", roll)):
        n, step, offset = WHENET_BINS[name]
        p = softmax(logits)
        assert p.shape[-1] == n, (name, p.shape)
        out.append((p * np.arange(n)).sum(axis=-1) * step + offset)
    return np.stack(out, axis=-1)
