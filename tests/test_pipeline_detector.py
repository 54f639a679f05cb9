"""Detector training pieces: region targets follow the firmware decoder, the loss trains what it decodes, anchors
from the boxes, boxes that move with their image, and the AP arithmetic."""
from dataclasses import replace

import numpy as np
import pytest

from host_tools.pipeline import anchors, box_transforms, detector, region_loss
from host_tools.pipeline.box_transforms import Augment
from host_tools.pipeline.datasets import Box

FRAME, GRID = (320, 240), (10, 7)
ANCHORS = [1.0, 1.0, 1.5, 1.4, 2.0, 2.0, 2.5, 2.6, 3.0, 3.0]


def _cfg(**kw):
    kw.setdefault("input_size", FRAME)
    return detector.DetectorConfig(labels=("a",) * kw.pop("classes", 1), anchors=tuple(ANCHORS), **kw)


def _logit(p):
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


SURE = float(_logit(1 - region_loss.LossScales().smooth))   # the objectness logit the smoothed loss wants


def _perfect_output(y, classes=1):
    """The raw map a perfect network would give for targets y: logits of the cell offsets, tw/th as they are,
    objectness at the loss's optimum."""
    gh, gw = y.shape[1:3]
    t = y[0].reshape(gh, gw, 5, 6 + classes)
    out = np.zeros((gh, gw, 5, 5 + classes), np.float32)
    out[..., 4] = -SURE
    m = t[..., 4] > 0
    out[m, 0], out[m, 1] = _logit(t[m, 0]), _logit(t[m, 1])
    out[m, 2], out[m, 3] = t[m, 2], t[m, 3]
    out[m, 4] = SURE
    out[m, 5:] = np.where(t[m, 6:] > 0, 8.0, -8.0)
    return out.reshape(gh, gw, -1)


@pytest.mark.parametrize("box", [Box(110, 48, 168, 110), Box(0, 0, 40, 44), Box(250, 180, 318, 238),
                                 Box(140, 100, 236, 200)])
def test_targets_decode_back_through_the_firmware_decoder(box):
    y = region_loss.targets([[box]], ANCHORS, GRID, FRAME)
    found = detector.decode(_perfect_output(y), _cfg(), 0.5)
    assert len(found) == 1
    d = found[0]
    assert detector.box_iou((d.x, d.y, d.x + d.w, d.y + d.h), (box.x0, box.y0, box.x1, box.y1)) > 0.95


def test_two_classes_keep_their_class_ids():
    boxes = [Box(10, 10, 60, 70, 1), Box(200, 120, 280, 200, 0)]
    y = region_loss.targets([boxes], ANCHORS, GRID, FRAME, classes=2)
    found = sorted(detector.decode(_perfect_output(y, 2), _cfg(classes=2), 0.5), key=lambda d: d.x)
    assert [d.classid for d in found] == [1, 0]


def test_targets_refuse_bad_boxes():
    with pytest.raises(region_loss.TargetError, match="class 3"):
        region_loss.targets([[Box(0, 0, 10, 10, 3)]], ANCHORS, GRID, FRAME, classes=1)
    with pytest.raises(region_loss.TargetError, match="empty box"):
        region_loss.targets([[Box(5, 5, 5, 20)]], ANCHORS, GRID, FRAME)


# ---------------------------------------------------------------- the loss

def _loss(y_true, y_pred, classes=1, scales=region_loss.LossScales()):
    fn = region_loss.region_loss(ANCHORS, classes, scales)
    return float(fn(np.asarray(y_true, np.float32), np.asarray(y_pred, np.float32)).numpy()[0])


def test_loss_is_smallest_at_the_targets_and_grows_with_each_error():
    box = Box(110, 48, 168, 110)
    y = region_loss.targets([[box]], ANCHORS, GRID, FRAME)
    best = _perfect_output(y)[None]
    base = _loss(y, best)
    cell = np.argwhere(y[0].reshape(7, 10, 5, 7)[..., 4] > 0)[0]
    r, c, a = cell
    for ch, delta in ((0, 1.0), (1, -1.0), (2, 0.5), (3, -0.5), (4, -6.0), (4, 3.0)):   # x, y, w, h, objectness
        worse = best.copy().reshape(1, 7, 10, 5, 6)
        worse[0, r, c, a, ch] += delta
        assert _loss(y, worse.reshape(best.shape)) > base + 0.05, (ch, delta)
    # a confident prediction where there is nothing; and a background pushed past the smoothed target
    for z, extra in ((6.0, 5.0), (-12.0, 0.05)):
        fp = best.copy().reshape(1, 7, 10, 5, 6)
        fp[0, 0, 9, 0, 4] = z
        assert _loss(y, fp.reshape(best.shape)) > base + extra, z


def test_giou_term_counts_overlap_alike_for_small_and_large_boxes():
    """The same relative shift costs a small and a large box the same GIoU term (squared cell offsets would
    charge the large box more): with only that term, the two losses are equal."""
    only_giou = region_loss.LossScales(obj=0, noobj=0, coord=0, giou=1.0)
    costs = []
    for box in (Box(100, 50, 130, 80), Box(60, 30, 180, 150)):
        y = region_loss.targets([[box]], ANCHORS, GRID, FRAME)
        out = _perfect_output(y).reshape(7, 10, 5, 6)
        r, c, a = np.argwhere(y[0].reshape(7, 10, 5, 7)[..., 4] > 0)[0]
        out[r, c, a, 2] += np.log(1.2)                       # 20% too wide
        costs.append(_loss(y, out.reshape(1, 7, 10, 30), scales=only_giou))
    assert costs[0] == pytest.approx(costs[1], rel=1e-3) and costs[0] > 0.1
    # a prediction beside its box (no overlap) still has a gradient: GIoU < 0, the term above 1
    box = Box(100, 50, 130, 80)
    y = region_loss.targets([[box]], ANCHORS, GRID, FRAME)
    out = _perfect_output(y).reshape(7, 10, 5, 6)
    r, c, a = np.argwhere(y[0].reshape(7, 10, 5, 7)[..., 4] > 0)[0]
    out[r, c, a, 2:4] -= np.log(3.0)                      # a third of the size ...
    out[r, c, a, 0] = -8.0                                # ... at the cell's left edge: clear of the box
    assert _loss(y, out.reshape(1, 7, 10, 30), scales=only_giou) > 1.1


def test_loss_ignores_background_predictions_that_already_overlap_a_true_box():
    """A second anchor in the same cell that decodes to nearly the true box is not pushed to background."""
    box = Box(110, 48, 168, 110)
    y = region_loss.targets([[box]], ANCHORS, GRID, FRAME)
    t = y[0].reshape(7, 10, 5, 7)
    r, c, a = np.argwhere(t[..., 4] > 0)[0]
    out = _perfect_output(y).reshape(7, 10, 5, 6)
    other = (a + 1) % 5
    bw, bh = (box.x1 - box.x0) * 10 / 320, (box.y1 - box.y0) * 7 / 240
    out[r, c, other, :4] = (_logit(t[r, c, a, 0]), _logit(t[r, c, a, 1]),
                            np.log(bw / ANCHORS[2 * other]), np.log(bh / ANCHORS[2 * other + 1]))
    out[r, c, other, 4] = 4.0                              # confident duplicate of the true box
    with_dup = _loss(y, out.reshape(1, 7, 10, 30))
    base = _loss(y, _perfect_output(y)[None])
    # ignored: it no longer pays even the small background cost it paid at the optimum's -SURE
    s = region_loss.LossScales().smooth
    at_rest = s * np.log1p(np.exp(SURE)) + (1 - s) * np.log1p(np.exp(-SURE))
    assert with_dup == pytest.approx(base - at_rest, abs=1e-3)
    strict = region_loss.LossScales(ignore_iou=1.01)       # no ignoring: the duplicate costs about softplus(4)
    assert _loss(y, out.reshape(1, 7, 10, 30), scales=strict) > base + 3.5


def test_class_term_only_with_two_or_more_classes():
    boxes = [Box(10, 10, 60, 70, 1)]
    y = region_loss.targets([boxes], ANCHORS, GRID, FRAME, classes=2)
    good = _perfect_output(y, 2)[None]
    swapped = good.copy().reshape(1, 7, 10, 5, 7)
    swapped[..., 5:] = swapped[..., 5:][..., ::-1]
    assert _loss(y, swapped.reshape(good.shape), classes=2) > _loss(y, good, classes=2) + 10


# ---------------------------------------------------------------- anchors

def test_kmeans_anchors_are_deterministic_and_track_box_sizes():
    rng = np.random.default_rng(0)
    boxes = [[Box(0, 0, s, s * 1.1)] for s in rng.uniform(30, 110, 300)]
    a = anchors.kmeans(boxes, GRID, FRAME)
    assert a == anchors.kmeans(boxes, GRID, FRAME) and len(a) == 10
    widths = a[0::2]
    assert widths == sorted(widths) and 30 / 32 < widths[0] < widths[-1] < 110 / 32
    # anchors from the data fit its boxes better than anchors from another set (the faces demo's)
    fixed = [0.96, 0.97, 1.33, 1.33, 1.76, 1.74, 2.29, 2.27, 2.92, 2.86]
    tall = [[Box(0, 0, s * 0.4, s * 1.6)] for s in rng.uniform(30, 110, 300)]
    assert anchors.mean_best_iou(tall, anchors.kmeans(tall, GRID, FRAME), GRID, FRAME) > \
        anchors.mean_best_iou(tall, fixed, GRID, FRAME) + 0.15


def test_kmeans_needs_five_boxes():
    with pytest.raises(anchors.AnchorError, match="at least 5 boxes"):
        anchors.kmeans([[Box(0, 0, 10, 10)]] * 4, GRID, FRAME)


# ---------------------------------------------------------------- boxes that move with the image

def _bright_box(img):
    ys, xs = np.nonzero(img[..., 0] > 127)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def test_augmented_boxes_follow_the_pixels():
    """Flip, zoom and shift: the box stays on the white rectangle (within the bilinear edge)."""
    rng = np.random.default_rng(5)
    img = np.zeros((240, 320, 3), np.uint8)
    img[50:110, 180:260] = 255
    box = Box(180, 50, 260, 110)
    geometric = Augment(flip=True, zoom=(0.6, 1.6), shift=0.2, brightness=0, contrast=0,
                          saturation=0, white_balance=0, noise=0)
    seen = 0
    for _ in range(40):
        out, boxes = box_transforms.augment(img, [box], rng, geometric)
        if not boxes:
            continue
        (b,) = boxes
        if b.x0 > 0 and b.y0 > 0 and b.x1 < 320 and b.y1 < 240:   # wholly inside: compare with the pixels
            assert np.allclose((b.x0, b.y0, b.x1, b.y1), _bright_box(out), atol=1.01), (b, _bright_box(out))
            seen += 1
    assert seen > 15


def test_light_changes_pixels_only():
    """The camera light of a batch changes the pixels, in RGB565 steps; the geometry (and so the boxes) stays."""
    rng = np.random.default_rng(1)
    img = np.zeros((2, 60, 80, 3), np.uint8)
    img[:, 10:40, 10:30] = 200
    out = box_transforms.light(img, rng, Augment())
    assert out.shape == img.shape and not np.array_equal(out, img)
    assert np.all(out[..., 0] % 8 == out[..., 0] >> 5)       # 5-bit red widened as the firmware does
    assert (out[:, 10:40, 10:30].mean() - out[:, 45:].mean()) > 100   # the bright patch did not move


def test_training_batches_hold_the_frames_and_their_targets():
    """Without augmentation a training batch is exactly the frames' model input and their boxes' targets."""
    from host_tools.pipeline.train import to_input
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 240, 320, 3), dtype=np.uint8)
    boxes = [[Box(10 * i, 20, 10 * i + 60, 90)] for i in range(5)]
    cfg = replace(_cfg(batch=2), augment=Augment().off())
    data = detector._Batches(cfg, images, boxes, seed=3)
    x, y = data[1]
    idx = data.order[2:4]
    np.testing.assert_array_equal(x, to_input(images[idx]))
    np.testing.assert_array_equal(y, region_loss.targets([boxes[i] for i in idx], ANCHORS, GRID, FRAME))


def test_training_stream_reads_ahead_the_same_batches_epoch_after_epoch():
    """The tf.data stream fit reads (made ahead on another thread) holds exactly the indexed batches, epoch after
    epoch, each epoch augmented and shuffled anew."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (5, 240, 320, 3), dtype=np.uint8)
    boxes = [[Box(10 * i, 20, 10 * i + 60, 90)] for i in range(5)]
    cfg = _cfg(batch=2)
    stream = [(x.numpy(), y.numpy()) for x, y in detector._Batches(cfg, images, boxes, seed=3).dataset().take(7)]
    ref = detector._Batches(cfg, images, boxes, seed=3)
    assert len(ref) == 3
    for e in range(3):
        for i in range(len(ref)):
            if e * 3 + i < len(stream):
                x, y = ref[i]
                np.testing.assert_array_equal(stream[e * 3 + i][0], x)
                np.testing.assert_array_equal(stream[e * 3 + i][1], y)
        ref.on_epoch_end()
    assert not np.array_equal(stream[0][0], stream[3][0])


def test_clip_keeps_what_mostly_shows_and_drops_the_rest():
    kept = box_transforms.clip([Box(-10, 0, 30, 20), Box(-30, 0, 10, 20), Box(300, 100, 330, 101.5)], 320, 240)
    assert kept == [Box(0, 0, 30, 20)]          # 75% inside kept and cut; 25% inside dropped; 1.5 px thin dropped


def test_framing_maps_boxes_like_the_pixels():
    """A 16:9 photo cropped to 4:3 and resized: boxes move with the crop; one cut off at the side is dropped."""
    photo = np.zeros((540, 960, 3), np.uint8)
    photo[200:300, 400:560] = 255              # in the kept centre
    photo[10:60, 10:90] = 255                  # in the cut-off left band
    img, boxes = box_transforms.frame(photo, [Box(400, 200, 560, 300), Box(10, 10, 90, 60)], 224, 168)
    assert img.shape == (168, 224, 3)
    (b,) = boxes
    assert np.allclose((b.x0, b.y0, b.x1, b.y1), _bright_box(img), atol=1.01)


# ---------------------------------------------------------------- configuration and AP

def test_default_config_takes_anchors_and_epochs_from_the_data(tmp_path):
    from PIL import Image

    from host_tools.pipeline.datasets import DetectionSample
    samples = []
    for i in range(40):
        p = tmp_path / ("%d.jpg" % i)
        Image.new("RGB", (640, 480)).save(p)
        s = 40 + 5 * (i % 10)
        samples.append(DetectionSample(str(p), [Box(100, 100, 100 + s, 100 + 2 * s)]))
    cfg = detector.default_config(samples, ["thing"])
    w, h = cfg.input_size
    assert w * 3 == h * 4 and cfg.grid == (w // 32, h // 32)
    a = np.array(cfg.anchors).reshape(5, 2)
    # boxes twice as tall as wide, 40..85 px of a 640-wide photo, in cells of the model input
    assert np.allclose(a[:, 1] / a[:, 0], 2 * (w / cfg.grid[0]) / (h / cfg.grid[1]), rtol=0.05)
    assert 40 * cfg.grid[0] / 640 <= a[0, 0] < a[-1, 0] <= 85 * cfg.grid[0] / 640
    assert cfg.epochs > detector.default_config(samples * 10, ["thing"]).epochs
    assert detector.default_config(samples, ["thing"], epochs=3, input_size=(320, 240)).epochs == 3


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


def test_map50_decodes_a_predictor_like_the_firmware():
    """map50 through a predictor that returns the perfect map for each image: 1.0; shifted by a cell: 0."""
    cfg = _cfg()
    truths = [[Box(110, 48, 168, 110)], [Box(20, 30, 80, 100), Box(200, 120, 280, 200)]]
    maps = np.stack([_perfect_output(region_loss.targets([t], ANCHORS, GRID, FRAME)) for t in truths])
    images = np.zeros((2, 240, 320, 3), np.uint8)
    assert detector.map50(lambda x: maps, images, truths, cfg) == pytest.approx(1.0)
    assert detector.map50(lambda x: np.roll(maps, 2, axis=2), images, truths, cfg) == 0.0


def test_coin_photos_voc_and_yolo_folders_hold_the_same_boxes(tmp_path):
    """The user-like detection set loads alike from its VOC and YOLO txt forms (what train --data reads)."""
    from host_tools.pipeline import coin_photos
    from host_tools.pipeline.datasets import load_detection_folder
    n = coin_photos.write_folder(tmp_path / "voc", 6, seed=3, fmt="voc")
    assert coin_photos.write_folder(tmp_path / "yolo", 6, seed=3, fmt="yolo") == n
    voc, yolo = (load_detection_folder(tmp_path / f, ["coin"]) for f in ("voc", "yolo"))
    assert len(voc) == len(yolo) == 6 and sum(len(s.boxes) for s in voc) == n >= 6
    for a, b in zip(voc, yolo):
        assert np.allclose([(x.x0, x.y0, x.x1, x.y1) for x in a.boxes], [(x.x0, x.y0, x.x1, x.y1) for x in b.boxes],
                           atol=0.01)
    assert (tmp_path / "yolo" / "classes.txt").read_text() == "coin\n"
