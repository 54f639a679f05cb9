"""Detection quality: box IoU and VOC all-point average precision (mAP@0.5)."""
import numpy as np


def box_iou(a, b):
    """IoU of two (x0, y0, x1, y1) tuples."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def average_precision(detections, truths, classes=1, iou=0.5):
    """(mean, per-class list) of VOC all-point AP. detections[i]: firmware boxes (x, y, w, h, value, classid) of
    image i; truths[i]: its datasets.Box list. Each true box is matched once, by the highest-scored detection
    overlapping it by >= iou; classes without any true box are left out of the mean."""
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
    return (float(np.mean(aps)) if aps else 0.0), aps
