"""YOLOv2 anchors from the user's boxes: IoU k-means on box shapes, in grid cells (the firmware's unit)."""
import numpy as np

FIRMWARE_ANCHORS = 5   # run_yolo2 derives classes = C / 5 - 5: it assumes 5 anchors


class AnchorError(ValueError):
    """Too few boxes to choose anchors from; the message says how many there are."""


def shape_iou(wh, anchors):
    """IoU of (n, 2) box shapes with (k, 2) anchor shapes, both centred at one point: (n, k)."""
    wh, anchors = np.asarray(wh, np.float64), np.asarray(anchors, np.float64)
    inter = np.minimum(wh[:, None, 0], anchors[None, :, 0]) * np.minimum(wh[:, None, 1], anchors[None, :, 1])
    return inter / (wh[:, None, 0] * wh[:, None, 1] + anchors[None, :, 0] * anchors[None, :, 1] - inter)


def box_shapes(boxes, grid, frame):
    """(n, 2) widths and heights in cells of every box in `boxes` (a list of Box lists, frame pixels)."""
    (gw, gh), (fw, fh) = grid, frame
    return np.array([((b.x1 - b.x0) * gw / fw, (b.y1 - b.y0) * gh / fh) for bs in boxes for b in bs],
                    np.float64).reshape(-1, 2)


def kmeans(boxes, grid, frame, k=FIRMWARE_ANCHORS, iters=100):
    """k anchors (w, h in cells, flattened, sorted by area) by IoU k-means over the boxes; deterministic
    (started at area quantiles). Fewer distinct shapes than k repeat the largest cluster split by area."""
    wh = box_shapes(boxes, grid, frame)
    if len(wh) < k:
        raise AnchorError("need at least %d boxes to choose %d anchors, got %d" % (k, k, len(wh)))
    order = np.argsort(wh[:, 0] * wh[:, 1], kind="stable")
    centers = wh[order[((np.arange(k) + 0.5) * len(wh) / k).astype(int)]]
    for _ in range(iters):
        assign = shape_iou(wh, centers).argmax(1)
        new = np.array([wh[assign == j].mean(0) if (assign == j).any() else centers[j] for j in range(k)])
        if np.allclose(new, centers):
            break
        centers = new
    centers = centers[np.argsort(centers[:, 0] * centers[:, 1], kind="stable")]
    return [round(float(v), 4) for v in centers.reshape(-1)]


def mean_best_iou(boxes, anchors, grid, frame):
    """How well the anchors fit the boxes: mean over boxes of the best shape IoU with an anchor."""
    wh = box_shapes(boxes, grid, frame)
    return float(shape_iou(wh, np.asarray(anchors).reshape(-1, 2)).max(1).mean()) if len(wh) else 0.0
