"""YOLOv2 training and evaluation: anchors, region targets, region loss, mAP through the firmware's decoder.

Grid convention = the firmware's run_yolo2: a (C, H, W) map over an in_w x in_h input has cells of in_w/W by
in_h/H pixels (240/7 = 34.3 px tall at 320x240, although the net's stride is 32), anchors are in cells, and
each cell holds, anchor-major, (tx, ty, tw, th, objectness, class logits...). Evaluation decodes with
host_tools.kmodel.yolo.region_decode, the one implementation of the firmware's decoder.
"""
import numpy as np

FIRMWARE_ANCHORS = 5   # run_yolo2 derives classes = C / 5 - 5: it assumes 5 anchors


class DetectorError(ValueError):
    """Bad detector data or settings; the message names what is wrong."""


def _shape_iou(wh, anchors):
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    return inter / (wh[:, None, 0] * wh[:, None, 1] + anchors[None, :, 0] * anchors[None, :, 1] - inter)


def kmeans_anchors(boxes, grid, frame, k=FIRMWARE_ANCHORS, iters=100):
    """k anchors (w, h in cells, flattened, sorted by area) by IoU k-means over the training boxes; deterministic."""
    (gw, gh), (fw, fh) = grid, frame
    wh = np.array([((b.x1 - b.x0) * gw / fw, (b.y1 - b.y0) * gh / fh) for bs in boxes for b in bs], np.float64)
    if len(wh) < k:
        raise DetectorError("need at least %d boxes to choose %d anchors, got %d" % (k, k, len(wh)))
    order = np.argsort(wh[:, 0] * wh[:, 1])
    centers = wh[order[((np.arange(k) + 0.5) * len(wh) / k).astype(int)]]
    for _ in range(iters):
        assign = _shape_iou(wh, centers).argmax(1)
        new = np.array([wh[assign == j].mean(0) if (assign == j).any() else centers[j] for j in range(k)])
        if np.allclose(new, centers):
            break
        centers = new
    centers = centers[np.argsort(centers[:, 0] * centers[:, 1])]
    return [round(float(v), 4) for v in centers.reshape(-1)]


def targets(boxes_per_image, anchors, grid, frame, classes=1):
    """Region targets (N, H, W, A*(6+classes)): per anchor (fx, fy, tw, th, responsible, weight, one-hot...)."""
    (gw, gh), (fw, fh) = grid, frame
    anc = np.asarray(anchors, np.float64).reshape(-1, 2)
    A, D = len(anc), 6 + classes
    y = np.zeros((len(boxes_per_image), gh, gw, A, D), np.float32)
    for n, bs in enumerate(boxes_per_image):
        for b in bs:
            if not 0 <= b.cls < classes:
                raise DetectorError("image %d: box class %d outside 0..%d" % (n, b.cls, classes - 1))
            bw, bh = (b.x1 - b.x0) * gw / fw, (b.y1 - b.y0) * gh / fh
            if bw <= 0 or bh <= 0:
                raise DetectorError("image %d: empty box %s" % (n, b))
            cx, cy = (b.x0 + b.x1) / 2 * gw / fw, (b.y0 + b.y1) / 2 * gh / fh
            col, row = min(int(cx), gw - 1), min(int(cy), gh - 1)
            a = int(_shape_iou(np.array([[bw, bh]]), anc)[0].argmax())
            y[n, row, col, a, :6] = (np.clip(cx - col, 0, 1), np.clip(cy - row, 0, 1), np.log(bw / anc[a, 0]),
                                     np.log(bh / anc[a, 1]), 1.0, 2.0 - bw * bh / (gw * gh))
            y[n, row, col, a, 6 + b.cls] = 1.0
    return y.reshape(len(boxes_per_image), gh, gw, A * D)


def region_loss(anchors, classes=1, obj_scale=5.0, noobj_scale=1.0, coord_scale=2.0, ignore_iou=0.6):
    """YOLOv2 region loss for the layout of `targets`; predictions whose box already overlaps a ground truth by
    more than ignore_iou are not pushed towards background."""
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

        def boxes(fx, fy, tw, th):  # (x0, y0, x1, y1) as frame fractions
            cx, cy = (col + fx) / gwf, (row + fy) / ghf
            w, h = tf.exp(tf.minimum(tw, 8.0)) * anc[..., 0] / gwf, tf.exp(tf.minimum(th, 8.0)) * anc[..., 1] / ghf
            return tf.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], -1)

        sx, sy, so = tf.sigmoid(p[..., 0]), tf.sigmoid(p[..., 1]), tf.sigmoid(p[..., 4])
        pb = tf.reshape(boxes(sx, sy, p[..., 2], p[..., 3]), (n, -1, 1, 4))
        tb = tf.reshape(boxes(t[..., 0], t[..., 1], t[..., 2], t[..., 3]), (n, 1, -1, 4))
        iw = tf.maximum(tf.minimum(pb[..., 2], tb[..., 2]) - tf.maximum(pb[..., 0], tb[..., 0]), 0.0)
        ih = tf.maximum(tf.minimum(pb[..., 3], tb[..., 3]) - tf.maximum(pb[..., 1], tb[..., 1]), 0.0)
        inter = iw * ih
        union = ((pb[..., 2] - pb[..., 0]) * (pb[..., 3] - pb[..., 1]) +
                 (tb[..., 2] - tb[..., 0]) * (tb[..., 3] - tb[..., 1]) - inter)
        iou = inter / tf.maximum(union, 1e-9) * tf.reshape(mask, (n, 1, -1))
        ignore = tf.cast(tf.reshape(tf.reduce_max(iou, -1), tf.shape(mask)) < ignore_iou, tf.float32)
        coord = mask * weight * ((sx - t[..., 0]) ** 2 + (sy - t[..., 1]) ** 2 +
                                 (p[..., 2] - t[..., 2]) ** 2 + (p[..., 3] - t[..., 3]) ** 2)
        obj = mask * (so - 1.0) ** 2
        noobj = (1.0 - mask) * ignore * so ** 2
        total = coord_scale * coord + obj_scale * obj + noobj_scale * noobj
        if classes > 1:
            ce = tf.nn.softmax_cross_entropy_with_logits(t[..., 6:], p[..., 5:])
            total += mask * ce
        return tf.reduce_sum(total, axis=[1, 2, 3])

    return loss


def augment(image, boxes, rng, max_shift=(48, 36), flip=True):
    """Random horizontal flip and shift (edge pixels fill the exposed border) of one frame and its boxes; boxes
    whose centre leaves the frame are dropped, the rest clipped. Keeps a fixed set of frames from being learnt
    by heart (placement, background)."""
    from host_tools.pipeline.datasets import Box
    h, w = image.shape[:2]
    out = image[:, ::-1] if flip and rng.random() < 0.5 else image
    bs = [Box(w - b.x1, b.y0, w - b.x0, b.y1, b.cls) for b in boxes] if out is not image else list(boxes)
    dx, dy = int(rng.integers(-max_shift[0], max_shift[0] + 1)), int(rng.integers(-max_shift[1], max_shift[1] + 1))
    ys = np.clip(np.arange(h) - dy, 0, h - 1)
    xs = np.clip(np.arange(w) - dx, 0, w - 1)
    out = out[ys][:, xs]
    kept = []
    for b in bs:
        b = Box(b.x0 + dx, b.y0 + dy, b.x1 + dx, b.y1 + dy, b.cls)
        cx, cy = (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2
        if 0 <= cx < w and 0 <= cy < h:
            kept.append(Box(max(b.x0, 0), max(b.y0, 0), min(b.x1, w), min(b.y1, h), b.cls))
    return out, kept


def _batches(images, boxes, anchors, grid, frame, classes, batch_size, seed, aug):
    """A keras PyDataset: a new shuffle and a new augmentation of every frame each epoch, targets per batch."""
    import keras

    from host_tools.pipeline.train import to_input

    class Batches(keras.utils.PyDataset):
        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.order = np.random.default_rng(seed).permutation(len(images))

        def __len__(self):
            return int(np.ceil(len(images) / batch_size))

        def __getitem__(self, i):
            idx = self.order[i * batch_size:(i + 1) * batch_size]
            rng = np.random.default_rng((seed, self.epoch, i))
            xs, bs = [], []
            for k in idx:
                x, b = augment(images[k], boxes[k], rng) if aug else (images[k], boxes[k])
                xs.append(x)
                bs.append(b)
            return to_input(np.stack(xs)), targets(bs, anchors, grid, frame, classes)

        def on_epoch_end(self):
            self.epoch += 1
            self.order = np.random.default_rng((seed, self.epoch)).permutation(len(images))

    return Batches()


def train_detector(build_model, images, boxes, anchors, *, frame, epochs, batch_size=16, lr=2e-3, classes=1,
                   strategy="default", seed=0, desc="detector", aug=True):
    """Fit a YOLOv2 model on uint8 frames with their boxes (flipped and shifted anew each epoch when aug).
    Returns (model, history)."""
    import keras

    from host_tools.pipeline import train
    train.set_seeds(seed)
    strat = train.get_strategy(strategy)
    with strat.scope():
        model = build_model()
        _, gh, gw, _ = model.output_shape
        steps = int(np.ceil(len(images) / batch_size)) * epochs
        model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.02)),
                      loss=region_loss(anchors, classes))
    data = _batches(images, boxes, anchors, (gw, gh), frame, classes, batch_size, seed, aug)
    hist = model.fit(data, epochs=epochs, verbose=0, callbacks=[train.progress_callback(epochs, desc)])
    return model, {k: [float(v) for v in vs] for k, vs in hist.history.items()}


def decode(out_hwc, anchors, threshold, nms, frame):
    """Boxes from one (H, W, C) model output, through the firmware's decoder (the map transposed to (C, H, W))."""
    from host_tools.kmodel.yolo import region_decode
    return region_decode(np.transpose(np.asarray(out_hwc, np.float32), (2, 0, 1)), anchors, threshold, nms, *frame)


def box_iou(a, b):
    """IoU of two (x0, y0, x1, y1) tuples."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def average_precision(detections, truths, classes=1, iou=0.5):
    """VOC all-point AP per class and its mean. detections[i]: firmware boxes of image i; truths[i]: Box list."""
    aps = []
    for c in range(classes):
        dets = [(d.value, i, (d.x, d.y, d.x + d.w, d.y + d.h)) for i, ds in enumerate(detections) for d in ds
                if d.classid == c]
        gts = {i: [(b.x0, b.y0, b.x1, b.y1) for b in bs if b.cls == c] for i, bs in enumerate(truths)}
        n_gt = sum(len(g) for g in gts.values())
        if n_gt == 0:
            continue
        used = {i: [False] * len(g) for i, g in gts.items()}
        tp = []
        for _, i, box in sorted(dets, key=lambda d: -d[0]):
            ious = [box_iou(box, g) for g in gts[i]]
            j = int(np.argmax(ious)) if ious else -1
            hit = j >= 0 and ious[j] >= iou and not used[i][j]
            if hit:
                used[i][j] = True
            tp.append(hit)
        tp = np.array(tp, dtype=np.float64)
        ctp, cfp = np.cumsum(tp), np.cumsum(1 - tp)
        rec = ctp / n_gt
        prec = ctp / np.maximum(ctp + cfp, 1e-9)
        mrec = np.concatenate([[0.0], rec, [1.0]])
        mpre = np.concatenate([[0.0], prec, [0.0]])
        for k in range(len(mpre) - 2, -1, -1):
            mpre[k] = max(mpre[k], mpre[k + 1])
        idx = np.flatnonzero(mrec[1:] != mrec[:-1])
        aps.append(float(np.sum((mrec[idx + 1] - mrec[idx]) * mpre[idx + 1])))
    return float(np.mean(aps)) if aps else 0.0, aps


def evaluate(outputs_hwc, truths, anchors, frame, threshold=0.05, nms=0.3, classes=1):
    """mAP@0.5 (and recall / precision at `threshold`) of model outputs against ground-truth boxes."""
    dets = [decode(o, anchors, threshold, nms, frame) for o in outputs_hwc]
    m, aps = average_precision(dets, truths, classes)
    return {"map50": m, "ap50": aps, "detections": int(sum(len(d) for d in dets)),
            "truths": int(sum(len(t) for t in truths))}
