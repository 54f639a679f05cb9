"""YOLOv2 region targets and loss, in the layout MaixPy's run_yolo2 decodes (host_tools/kmodel/yolo.py).

The firmware reads a (C, H, W) map over an in_w x in_h input as cells of in_w/W by in_h/H pixels, anchor-major,
each anchor holding (tx, ty, tw, th, objectness, class logits...): box centre x = (col + sigmoid(tx)) / W,
width = exp(tw) * anchor_w / W, score = sigmoid(objectness) * softmax(classes). The loss trains exactly those
quantities on the box the firmware would decode: the cell offsets through the sigmoid and the log sizes against
the anchor (squared errors), the decoded box's overlap with the true one (1 - GIoU: mAP@0.5 is an overlap test,
and it weighs small and large boxes alike), objectness as a probability (binary cross-entropy on the logit), and
class cross-entropy (only with 2+ classes: with one, the firmware's softmax is 1 whatever the logit).

Objectness targets are smoothed (`smooth` instead of 0, 1 - smooth instead of 1): the logits then settle within
about +-log((1 - smooth) / smooth) instead of drifting ever further out, so the int8 output's one scale keeps
fine steps for the box offsets and sizes that share it.
"""
from dataclasses import dataclass

import numpy as np

from host_tools.pipeline.anchors import shape_iou


class TargetError(ValueError):
    """A box that cannot be a training target; the message names the image and the box."""


@dataclass(frozen=True)
class LossScales:
    obj: float = 5.0          # the responsible anchor's objectness, pushed up
    noobj: float = 1.0        # every other prediction's objectness, pushed down ...
    ignore_iou: float = 0.6   # ... unless its box already overlaps a true box by more than this
    coord: float = 1.0        # centre offsets and log sizes, weighted 2 - box area / frame area
    giou: float = 2.0         # 1 - GIoU of the responsible prediction's decoded box with its true box
    cls: float = 1.0          # class cross-entropy
    smooth: float = 0.01      # objectness targets smooth and 1 - smooth
    rescore: float = 0.0      # the responsible target scaled towards the prediction's IoU with its box


def targets(boxes_per_image, anchors, grid, frame, classes=1):
    """Region targets (N, H, W, A*(6+classes)): per anchor (fx, fy, tw, th, responsible, weight, one-hot...).

    Each box goes to the cell holding its centre and to the anchor whose shape fits it best; fx, fy are the
    centre's offsets in that cell, tw = log(box w / anchor w) in cells; weight = 2 - box area / frame area
    (small boxes count more, as in YOLOv2)."""
    (gw, gh), (fw, fh) = grid, frame
    anc = np.asarray(anchors, np.float64).reshape(-1, 2)
    A, D = len(anc), 6 + classes
    y = np.zeros((len(boxes_per_image), gh, gw, A, D), np.float32)
    for n, bs in enumerate(boxes_per_image):
        for b in bs:
            if not 0 <= b.cls < classes:
                raise TargetError("image %d: box class %d outside 0..%d" % (n, b.cls, classes - 1))
            bw, bh = (b.x1 - b.x0) * gw / fw, (b.y1 - b.y0) * gh / fh
            if bw <= 0 or bh <= 0:
                raise TargetError("image %d: empty box %s" % (n, b))
            cx, cy = (b.x0 + b.x1) / 2 * gw / fw, (b.y0 + b.y1) / 2 * gh / fh
            col, row = min(max(int(cx), 0), gw - 1), min(max(int(cy), 0), gh - 1)
            a = int(shape_iou(np.array([[bw, bh]]), anc)[0].argmax())
            y[n, row, col, a, :6] = (np.clip(cx - col, 0, 1), np.clip(cy - row, 0, 1), np.log(bw / anc[a, 0]),
                                     np.log(bh / anc[a, 1]), 1.0, 2.0 - bw * bh / (gw * gh))
            y[n, row, col, a, 6:] = 0.0
            y[n, row, col, a, 6 + b.cls] = 1.0
    return y.reshape(len(boxes_per_image), gh, gw, A * D)


def region_loss(anchors, classes=1, scales=LossScales()):
    """Keras loss (y_true = `targets`, y_pred = the raw (N, H, W, A*(5+classes)) map), summed per image."""
    import tensorflow as tf
    anc = tf.constant(np.asarray(anchors, np.float32).reshape(1, 1, 1, -1, 2))
    A = len(anchors) // 2

    def loss(y_true, y_pred):
        shp = tf.shape(y_pred)
        n, gh, gw = shp[0], shp[1], shp[2]
        p = tf.reshape(y_pred, (n, gh, gw, A, 5 + classes))
        t = tf.reshape(y_true, (n, gh, gw, A, 6 + classes))
        mask, weight = t[..., 4], t[..., 5]
        gwf, ghf = tf.cast(gw, tf.float32), tf.cast(gh, tf.float32)
        col = tf.cast(tf.reshape(tf.range(gw), (1, 1, -1, 1)), tf.float32)
        row = tf.cast(tf.reshape(tf.range(gh), (1, -1, 1, 1)), tf.float32)

        def corners(fx, fy, tw, th):  # (x0, y0, x1, y1) as frame fractions, as the firmware decodes them
            cx, cy = (col + fx) / gwf, (row + fy) / ghf
            w, h = tf.exp(tf.minimum(tw, 8.0)) * anc[..., 0] / gwf, tf.exp(tf.minimum(th, 8.0)) * anc[..., 1] / ghf
            return tf.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)

        sx, sy = tf.sigmoid(p[..., 0]), tf.sigmoid(p[..., 1])
        pred_box = corners(sx, sy, p[..., 2], p[..., 3])
        true_box = corners(t[..., 0], t[..., 1], t[..., 2], t[..., 3])
        # background: not responsible, and no true box of the image overlaps the prediction by ignore_iou
        every, _ = _overlap(tf.reshape(pred_box, (n, -1, 1, 4)), tf.reshape(true_box, (n, 1, -1, 4)))
        best = tf.reshape(tf.reduce_max(every * tf.reshape(mask, (n, 1, -1)), -1), tf.shape(mask))
        background = (1.0 - mask) * tf.cast(tf.stop_gradient(best) < scales.ignore_iou, tf.float32)
        iou, giou = _overlap(pred_box, true_box)
        goal = 1.0 - scales.smooth
        if scales.rescore:
            goal *= 1.0 - scales.rescore + scales.rescore * tf.stop_gradient(iou)
        z = p[..., 4]
        total = (scales.obj * mask * _bce(z, goal) + scales.noobj * background * _bce(z, scales.smooth)
                 + scales.coord * mask * weight * ((sx - t[..., 0]) ** 2 + (sy - t[..., 1]) ** 2 +
                                                   (p[..., 2] - t[..., 2]) ** 2 + (p[..., 3] - t[..., 3]) ** 2)
                 + scales.giou * mask * (1.0 - giou))
        if classes > 1:
            total += scales.cls * mask * tf.nn.softmax_cross_entropy_with_logits(t[..., 6:], p[..., 5:])
        return tf.reduce_sum(total, axis=[1, 2, 3])

    return loss


def _bce(z, goal):
    """Binary cross-entropy of sigmoid(z) against a target probability."""
    import tensorflow as tf
    return goal * tf.nn.softplus(-z) + (1.0 - goal) * tf.nn.softplus(z)


def _overlap(a, b):
    """(IoU, generalized IoU) of boxes (..., 4) as (x0, y0, x1, y1), broadcasting."""
    import tensorflow as tf
    iw = tf.maximum(tf.minimum(a[..., 2], b[..., 2]) - tf.maximum(a[..., 0], b[..., 0]), 0.0)
    ih = tf.maximum(tf.minimum(a[..., 3], b[..., 3]) - tf.maximum(a[..., 1], b[..., 1]), 0.0)
    inter = iw * ih
    union = tf.maximum((a[..., 2] - a[..., 0]) * (a[..., 3] - a[..., 1]) +
                       (b[..., 2] - b[..., 0]) * (b[..., 3] - b[..., 1]) - inter, 1e-9)
    hull = tf.maximum((tf.maximum(a[..., 2], b[..., 2]) - tf.minimum(a[..., 0], b[..., 0])) *
                      (tf.maximum(a[..., 3], b[..., 3]) - tf.minimum(a[..., 1], b[..., 1])), 1e-9)
    iou = inter / union
    return iou, iou - (hull - union) / hull
