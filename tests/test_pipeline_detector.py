"""Region targets follow the firmware decoder's convention; AP arithmetic; datasets for detection."""
import numpy as np
import pytest

from host_tools.pipeline import detector
from host_tools.pipeline.datasets import Box

FRAME, GRID = (320, 240), (10, 7)
ANCHORS = [1.0, 1.0, 1.5, 1.4, 2.0, 2.0, 2.5, 2.6, 3.0, 3.0]


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def _perfect_output(y, classes=1):
    """The raw map a perfect network would give for targets y: logits of the cell offsets, tw/th as they are."""
    gh, gw = y.shape[1:3]
    t = y[0].reshape(gh, gw, 5, 6 + classes)
    out = np.zeros((gh, gw, 5, 5 + classes), np.float32)
    out[..., 4] = -12.0
    m = t[..., 4] > 0
    out[m, 0], out[m, 1] = _logit(t[m, 0]), _logit(t[m, 1])
    out[m, 2], out[m, 3] = t[m, 2], t[m, 3]
    out[m, 4] = 12.0
    out[m, 5:] = np.where(t[m, 6:] > 0, 8.0, -8.0)
    return out.reshape(gh, gw, -1)


@pytest.mark.parametrize("box", [Box(110, 48, 168, 110), Box(0, 0, 40, 44), Box(250, 180, 318, 238),
                                 Box(140, 100, 236, 200)])
def test_targets_decode_back_through_the_firmware_decoder(box):
    y = detector.targets([[box]], ANCHORS, GRID, FRAME)
    found = detector.decode(_perfect_output(y), ANCHORS, 0.5, 0.3, FRAME)
    assert len(found) == 1
    d = found[0]
    assert detector.box_iou((d.x, d.y, d.x + d.w, d.y + d.h), (box.x0, box.y0, box.x1, box.y1)) > 0.95


def test_two_classes_keep_their_class_ids():
    boxes = [Box(10, 10, 60, 70, 1), Box(200, 120, 280, 200, 0)]
    y = detector.targets([boxes], ANCHORS, GRID, FRAME, classes=2)
    found = sorted(detector.decode(_perfect_output(y, 2), ANCHORS, 0.5, 0.3, FRAME), key=lambda d: d.x)
    assert [d.classid for d in found] == [1, 0]


def test_targets_refuse_bad_boxes():
    with pytest.raises(detector.DetectorError, match="class 3"):
        detector.targets([[Box(0, 0, 10, 10, 3)]], ANCHORS, GRID, FRAME, classes=1)
    with pytest.raises(detector.DetectorError, match="empty box"):
        detector.targets([[Box(5, 5, 5, 20)]], ANCHORS, GRID, FRAME)


def test_kmeans_anchors_are_deterministic_and_track_box_sizes():
    rng = np.random.default_rng(0)
    boxes = [[Box(0, 0, s, s * 1.1)] for s in rng.uniform(30, 110, 300)]
    a = detector.kmeans_anchors(boxes, GRID, FRAME)
    assert a == detector.kmeans_anchors(boxes, GRID, FRAME) and len(a) == 10
    widths = a[0::2]
    assert widths == sorted(widths) and 30 / 32 < widths[0] < widths[-1] < 110 / 32


class _Det:
    def __init__(self, x, y, w, h, value, classid=0):
        self.x, self.y, self.w, self.h, self.value, self.classid = x, y, w, h, value, classid


def test_average_precision():
    truths = [[Box(10, 10, 50, 50)], [Box(100, 100, 150, 150)]]
    perfect = [[_Det(10, 10, 40, 40, 0.9)], [_Det(100, 100, 50, 50, 0.8)]]
    assert detector.average_precision(perfect, truths)[0] == pytest.approx(1.0)
    # a confident false positive ranked first, then both hits: precision 1/2 at recall .5, 2/3 at recall 1
    fp_first = [[_Det(200, 200, 40, 40, 0.99), _Det(10, 10, 40, 40, 0.9)], [_Det(100, 100, 50, 50, 0.8)]]
    assert detector.average_precision(fp_first, truths)[0] == pytest.approx(2 / 3)
    # a duplicate of a matched box counts as a false positive; a missed box caps recall at 0.5
    half = [[_Det(10, 10, 40, 40, 0.9), _Det(11, 11, 40, 40, 0.85)], []]
    assert detector.average_precision(half, truths)[0] == pytest.approx(0.5)


def test_augmented_boxes_follow_the_pixels():
    rng = np.random.default_rng(5)
    img = np.zeros((240, 320, 3), np.uint8)
    img[50:90, 200:260] = 255
    box = Box(200, 50, 260, 90)
    for _ in range(30):
        out, boxes = detector.augment(img, [box], rng)
        ys, xs = np.nonzero(out[..., 0] == 255)
        (b,) = boxes           # the centre never leaves the frame at these shifts
        assert (b.x0, b.y0, b.x1, b.y1) == (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
