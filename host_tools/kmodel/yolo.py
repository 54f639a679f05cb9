"""YOLOv2 region layer exactly as MaixPy's run_yolo2 decodes it (sipeed_yolo2.c region_layer_run).

Firmware behaviour kept on purpose:
- classes = C / 5 - 5: the firmware assumes 5 anchors; a map that does not fit anchor_num * (5 + classes)
  with that class count is refused here (the board would read garbage).
- sigmoid on tx, ty and objectness, softmax over the class scores (max-subtracted), w = exp(tw) * anchor / W.
- a class score counts when objectness * class prob > threshold; NMS per class over all boxes sorted by that
  score (descending; ties keep grid order, the firmware's qsort leaves them unspecified), suppressing boxes
  whose IoU with a kept one is > nms; each box then reports its best surviving class if > threshold.
- rect in input pixels: x1 = x*W - w*W/2 truncated toward zero, clamped at 0 (a negative float converts to
  0 on the K210's unsigned conversion); w = x2 - x1; no clipping at the right/bottom edge.
- the firmware writes sigmoid/softmax back into the model output buffer; this function works on a copy.
"""
from dataclasses import dataclass

import numpy as np


@dataclass
class Box:
    x: int
    y: int
    w: int
    h: int
    value: float
    classid: int
    index: int
    objnum: int

    def rect(self):
        return (self.x, self.y, self.w, self.h)


def _to_u32(v: np.float32) -> int:
    """float -> uint32_t as RISC-V fcvt.wu.s does it: truncate, saturate to [0, 2^32 - 1]."""
    if not np.isfinite(v):
        return 0 if (np.isnan(v) or v < 0) else 0xFFFFFFFF
    return int(min(max(np.trunc(v), 0), 0xFFFFFFFF))


def region_decode(out, anchors, threshold, nms, in_w, in_h) -> list:
    """Boxes (in input pixels) from one (C, H, W) float map; [] when nothing passes (run_yolo2 gives None)."""
    out = np.asarray(out, dtype=np.float32)
    if out.ndim != 3:
        raise ValueError("region_decode needs a (C, H, W) map, got shape %s" % (out.shape,))
    anchors = [float(a) for a in anchors]
    if not anchors or len(anchors) % 2:
        raise ValueError("anchors must hold 2 * anchor_num numbers, got %d" % len(anchors))
    n_anchor = len(anchors) // 2
    C, lh, lw = out.shape
    classes = C // 5 - 5
    if classes < 1 or n_anchor * (5 + classes) != C:
        raise ValueError("a %d-channel map: the firmware takes %d classes (C/5 - 5), which does not fit %d anchors"
                         " x (5 + classes)" % (C, classes, n_anchor))
    wh = lw * lh
    p = out.reshape(n_anchor, 5 + classes, wh).astype(np.float64)
    # forward_region_layer: sigmoid(x, y), sigmoid(objectness), softmax over classes; results kept as float32
    xy = (1.0 / (1.0 + np.exp(-p[:, 0:2]))).astype(np.float32)
    obj = (1.0 / (1.0 + np.exp(-p[:, 4]))).astype(np.float32)
    cls = p[:, 5:].astype(np.float32)
    e = np.exp(cls - cls.max(axis=1, keepdims=True)).astype(np.float32)
    cls = e / e.sum(axis=1, keepdims=True, dtype=np.float32)
    twh = p[:, 2:4].astype(np.float32)
    # get_region_boxes: box index = anchor * wh + cell; cell = row * lw + col
    col = np.tile(np.arange(lw, dtype=np.float32), lh)
    row = np.repeat(np.arange(lh, dtype=np.float32), lw)
    anc = np.asarray(anchors, np.float32).reshape(n_anchor, 2)
    bx = ((col[None, :] + xy[:, 0]) / np.float32(lw)).reshape(-1)
    by = ((row[None, :] + xy[:, 1]) / np.float32(lh)).reshape(-1)
    bw = (np.exp(twh[:, 0]) * anc[:, 0:1] / np.float32(lw)).astype(np.float32).reshape(-1)
    bh = (np.exp(twh[:, 1]) * anc[:, 1:2] / np.float32(lh)).astype(np.float32).reshape(-1)
    prob = (obj[:, None, :] * cls).astype(np.float32)               # (anchor, class, cell)
    probs = prob.transpose(0, 2, 1).reshape(n_anchor * wh, classes).copy()
    probs[probs <= np.float32(threshold)] = 0
    # do_nms_sort
    n = probs.shape[0]
    l, r = bx - bw / 2, bx + bw / 2
    t, b = by - bh / 2, by + bh / 2
    area = bw * bh
    for k in range(classes):
        order = np.argsort(-probs[:, k], kind="stable")
        order = order[probs[order, k] > 0]          # zero scores are skipped as "i" (and zeroing them is a no-op)
        for pos, i in enumerate(order):
            if probs[i, k] == 0:
                continue
            rest = order[pos + 1:]
            if rest.size == 0:
                break
            iw = np.minimum(r[i], r[rest]) - np.maximum(l[i], l[rest])
            ih = np.minimum(b[i], b[rest]) - np.maximum(t[i], t[rest])
            inter = np.where((iw < 0) | (ih < 0), 0, iw * ih)
            with np.errstate(divide="ignore", invalid="ignore"):
                iou = inter / (area[i] + area[rest] - inter)
            probs[rest[iou > np.float32(nms)], k] = 0
    # region_layer_output
    best = probs.argmax(axis=1)
    found = []
    W, H = np.float32(in_w), np.float32(in_h)
    for i in range(n):
        v = probs[i, best[i]]
        if v > np.float32(threshold):
            x1 = _to_u32(bx[i] * W - bw[i] * W / 2)
            y1 = _to_u32(by[i] * H - bh[i] * H / 2)
            x2 = _to_u32(bx[i] * W + bw[i] * W / 2)
            y2 = _to_u32(by[i] * H + bh[i] * H / 2)
            found.append((x1, y1, x2 - x1, y2 - y1, float(v), int(best[i])))
    return [Box(x, y, w, h, v, c, i, len(found)) for i, (x, y, w, h, v, c) in enumerate(found)]


def draw_boxes(rgb, boxes, labels=(), color=(255, 0, 0)):
    """A PIL image of `rgb` (H, W, 3 uint8) with each box and its label drawn, for people to compare."""
    from PIL import Image, ImageDraw
    img = Image.fromarray(np.asarray(rgb, np.uint8), "RGB")
    d = ImageDraw.Draw(img)
    for bx in boxes:
        d.rectangle([bx.x, bx.y, bx.x + bx.w, bx.y + bx.h], outline=color, width=2)
        name = labels[bx.classid] if bx.classid < len(labels) else str(bx.classid)
        d.text((bx.x + 3, bx.y + 2), "%s %.2f" % (name, bx.value), fill=color)
    return img
