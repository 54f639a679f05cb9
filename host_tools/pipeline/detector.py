"""YOLOv2 detector training that learns from a user's small set, and its validation mAP@0.5.

    cfg = default_config(samples, labels)                # sizes, anchors from the boxes, epochs from the count
    images, boxes = frames(samples, cfg)                 # each photo framed as the board frames the camera
    model, hist = train_detector(cfg, x_tr, b_tr, val=(x_va, b_va))
    map50(keras_predictor(model), x_va, b_va, cfg)       # or int8_predictor(tflite), kmodel_predictor(kmodel)

Grid convention = the firmware's run_yolo2: a (C, H, W) map over an in_w x in_h input has cells of in_w/W by
in_h/H pixels (a 240-pixel-high input over 7 rows gives 34.3-pixel cells, although the net's stride is 32: the
default input keeps both at 32); anchors are in cells. Evaluation decodes with host_tools.kmodel.yolo.region_decode,
the one implementation of the firmware's decoder, with the manifest's NMS.
"""
from dataclasses import dataclass, field, replace

import numpy as np

from host_tools import framing as F
from host_tools.pipeline import anchors as A
from host_tools.pipeline.box_transforms import Augment
from host_tools.pipeline.detection_metrics import average_precision, box_iou  # noqa: F401 (re-exported)
from host_tools.pipeline.region_loss import LossScales

INPUT_SIZE = (256, 192)   # (w, h): the whole 4:3 camera frame in 32-pixel cells (8 x 6, the net's own stride),
#                           at a size 2 CPU cores train in minutes
THRESHOLD, NMS = 0.5, 0.3  # what the device uses (manifest)
EVAL_THRESHOLD = 0.01     # mAP needs the low-score detections too
STEPS, MIN_EPOCHS, MAX_EPOCHS = 1500, 15, 150   # default training length in optimizer steps, and its bounds
#                            (150 coin photos: 1800 steps gave kmodel mAP 0.649-0.679 in 120 epochs, 1500 gave 0.668)
SETTLE_FRAMES = 256       # training frames BatchNorm's statistics are measured on
PREFETCH = 4             # training batches made ahead, on their own thread
PREDICT_BATCH = 32        # frames per call when settling or validating (larger batches run slower on the CPU)


class DetectorError(ValueError):
    """Bad detector data or settings; the message names what is wrong."""


@dataclass(frozen=True)
class DetectorConfig:
    """Everything a detector training run needs; default_config chooses it from the data."""
    labels: tuple
    anchors: tuple                    # 2 * 5 floats, (w, h) in grid cells
    input_size: tuple = INPUT_SIZE    # (w, h) pixels
    framing: str = F.DEFAULT
    backbone: str = "small"
    alpha: float = 0.25               # MobileNet width (backbone "mobilenet")
    epochs: int = 80                  # at most; early stopping on validation mAP ends sooner
    batch: int = 8
    lr: float = 6e-3                  # peak of the warm-up + cosine schedule
    warmup: int = 3                   # epochs of linear warm-up
    patience: int = 30                # epochs without a better validation mAP before stopping
    validate_every: int = 5           # epochs between validation mAP measurements ...
    validate_from: float = 0.3        # ... from this part of the epochs on (early ones are never the best)
    bn_momentum: float = 0.9          # BatchNorm moving averages that follow a few dozen steps
    augment: Augment = field(default_factory=Augment)
    loss: LossScales = field(default_factory=LossScales)
    threshold: float = THRESHOLD
    nms: float = NMS
    val_fraction: float = 0.2         # photos held out for validation (split)
    seed: int = 0

    @property
    def classes(self):
        return len(self.labels)

    @property
    def grid(self):
        """(W, H) of the region map: the backbone's stride-2 first conv (ceil) then four 2x2 pools (floor)."""
        return tuple(((s + 1) // 2) // 16 for s in self.input_size)

    def build(self, name="detector"):
        """The Keras YOLOv2 model for this configuration (arch.yolo_v2), BatchNorm momentum set."""
        import keras

        from host_tools.pipeline import arch
        w, h = self.input_size
        model = arch.yolo_v2(list(self.anchors), self.classes, (h, w), backbone=self.backbone, alpha=self.alpha,
                             name=name)
        if tuple(model.output_shape[1:3]) != (self.grid[1], self.grid[0]):
            raise DetectorError("%s: output grid %s is not the %dx%d the configuration expects"
                                % (name, model.output_shape[1:3], *self.grid))
        for layer in model.layers:
            if isinstance(layer, keras.layers.BatchNormalization):
                layer.momentum = self.bn_momentum
        return model


def config_from_manifest(man) -> DetectorConfig:
    """The decoding settings of a compiled detector (labels, anchors, input size, threshold, NMS, framing)."""
    return DetectorConfig(labels=tuple(man.labels), anchors=tuple(man.anchors),
                          input_size=(man.input["w"], man.input["h"]), framing=man.framing,
                          threshold=man.threshold, nms=man.nms)


def source_size(sample):
    """(w, h) of a DetectionSample's photo (upright, as it is read for training), from its header."""
    from host_tools.framing import photo_size
    try:
        return photo_size(sample.image)
    except ValueError as e:
        raise DetectorError(str(e)) from None


def default_config(samples, labels, **overrides) -> DetectorConfig:
    """The configuration for a user's DetectionSamples: anchors by k-means on the boxes as the model will see
    them (framed, in grid cells), epochs scaled to the set's size. `overrides` are DetectorConfig fields the user
    gave (input_size, epochs, batch, lr, framing, backbone, ...); the rest are chosen here."""
    from host_tools.pipeline.box_transforms import frame_boxes
    probe = DetectorConfig(labels=tuple(labels), anchors=(), **_checked(overrides))
    w, h = probe.input_size
    framed = [frame_boxes(s.boxes, source_size(s), w, h, probe.framing) for s in samples]
    return config_for(framed, labels, **overrides)


def config_for(framed_boxes, labels, **overrides) -> DetectorConfig:
    """DetectorConfig from boxes already in model-input pixels (one list per image): anchors from them, and
    unless given, epochs for about STEPS optimizer steps (small sets get more passes, big ones fewer)."""
    if not labels:
        raise DetectorError("a detector needs at least one label")
    overrides = _checked(overrides)
    cfg = DetectorConfig(labels=tuple(labels), anchors=(), **overrides)
    if not sum(len(b) for b in framed_boxes):
        raise DetectorError("no boxes to learn from: every annotated object falls outside the framed %dx%d region"
                            % cfg.input_size if framed_boxes else "no annotated images")
    try:
        anchors = tuple(A.kmeans(framed_boxes, cfg.grid, cfg.input_size))
    except A.AnchorError as e:
        raise DetectorError(str(e)) from None
    changes = {"anchors": anchors}
    if "epochs" not in overrides:
        steps_per_epoch = max(1, int(np.ceil(len(framed_boxes) * (1 - cfg.val_fraction) / cfg.batch)))
        changes["epochs"] = int(np.clip(round(STEPS / steps_per_epoch), MIN_EPOCHS, MAX_EPOCHS))
    return replace(cfg, **changes)


def _checked(overrides):
    """The overrides as DetectorConfig takes them: known names only; a side or (w, h) for input_size."""
    unknown = sorted(set(overrides) - set(DetectorConfig.__dataclass_fields__) - {"labels", "anchors"})
    if unknown:
        raise DetectorError("unknown detector setting(s): %s" % ", ".join(unknown))
    out = dict(overrides)
    if "input_size" in out:
        size = out["input_size"]
        w, h = (size, size) if isinstance(size, int) else tuple(size)
        if w < 32 or h < 32:
            raise DetectorError("input size %dx%d: a detector needs at least 32x32 (one grid cell)" % (w, h))
        out["input_size"] = (int(w), int(h))
    if "framing" in out:
        F.check(out["framing"], "framing")
    return out


def frames(samples, cfg: DetectorConfig, progress=True):
    """(images (N, h, w, 3) uint8, boxes [Box lists]) of the samples, each photo framed by cfg's rule."""
    from tqdm import tqdm

    from host_tools.pipeline import box_transforms, datasets
    w, h = cfg.input_size
    images, boxes = [], []
    for s in tqdm(samples, desc="photos", unit="photo", disable=not progress, dynamic_ncols=True):
        img, bs = box_transforms.frame(datasets.load_image(s.image), s.boxes, w, h, cfg.framing)
        images.append(img)
        boxes.append(bs)
    return np.stack(images), boxes


def split(n, val_fraction=0.2, seed=0):
    """Fixed train / validation indices of n images (at least one of each)."""
    if n < 2:
        raise DetectorError("need at least 2 annotated images to hold one out for validation, got %d" % n)
    order = np.random.default_rng(seed).permutation(n)
    n_val = min(n - 1, max(1, int(round(n * val_fraction))))
    return np.sort(order[n_val:]), np.sort(order[:n_val])


# ---------------------------------------------------------------- training

class _Batches:
    """Training batches: a new shuffle and a new augmentation of every frame each epoch, targets per batch.
    Batch i of epoch e depends on (seed, e, i) only, so the stream is the same however far it is read ahead."""

    def __init__(self, cfg, images, boxes, seed):
        from host_tools.pipeline.box_transforms import fill_colour
        self.cfg, self.images, self.boxes, self.seed = cfg, images, boxes, seed
        self.fills = [fill_colour(im) for im in images]
        self.epoch = 0
        self.order = np.random.default_rng((seed, 0)).permutation(len(images))

    def __len__(self):
        return int(np.ceil(len(self.images) / self.cfg.batch))

    def __getitem__(self, i):
        from host_tools.pipeline.box_transforms import augment, light, mosaic
        from host_tools.pipeline.region_loss import targets
        from host_tools.pipeline.train import to_input
        cfg, images, boxes, fills = self.cfg, self.images, self.boxes, self.fills
        idx = self.order[i * cfg.batch:(i + 1) * cfg.batch]
        rng = np.random.default_rng((self.seed, self.epoch, i))
        xs, bs = [], []
        for k in idx:
            x, b = augment(images[k], boxes[k], rng, cfg.augment, fills[k])
            if rng.random() < cfg.augment.mosaic:
                others = rng.integers(0, len(images), 3)
                x, b = mosaic([(x, b)] + [augment(images[j], boxes[j], rng, cfg.augment, fills[j]) for j in others],
                              rng)
            xs.append(x)
            bs.append(b)
        return to_input(light(xs, rng, cfg.augment)), targets(bs, cfg.anchors, cfg.grid, cfg.input_size, cfg.classes)

    def on_epoch_end(self):
        self.epoch += 1
        self.order = np.random.default_rng((self.seed, self.epoch)).permutation(len(self.images))

    def forever(self):
        while True:
            for i in range(len(self)):
                yield self[i]
            self.on_epoch_end()

    def dataset(self):
        """The endless stream as a tf.data pipeline that makes the next batches on a second thread while the
        current step trains (fit then keeps one iterator across epochs, with steps_per_epoch = len(self))."""
        import tensorflow as tf
        (w, h), (gw, gh) = self.cfg.input_size, self.cfg.grid
        depth = len(self.cfg.anchors) // 2 * (6 + self.cfg.classes)
        spec = (tf.TensorSpec((None, h, w, 3), tf.float32), tf.TensorSpec((None, gh, gw, depth), tf.float32))
        return tf.data.Dataset.from_generator(self.forever, output_signature=spec).prefetch(PREFETCH)


def _schedule(cfg, steps_per_epoch):
    import keras
    total = steps_per_epoch * cfg.epochs
    warm = min(steps_per_epoch * cfg.warmup, total // 2)
    return keras.optimizers.schedules.CosineDecay(cfg.lr / 10, max(total - warm, 1), alpha=0.01,
                                                  warmup_target=cfg.lr, warmup_steps=warm)


def _init_region_bias(model, cfg, prior=0.01):
    """Objectness starts at `prior` (logit bias) so the first steps are not spent silencing the background."""
    layer = model.get_layer("region")
    kernel, bias = layer.get_weights()
    bias[4::5 + cfg.classes] = np.log(prior / (1 - prior))
    layer.set_weights([kernel, bias])


def train_detector(cfg: DetectorConfig, images, boxes, *, strategy="default", seed=0, desc="detector", val=None,
                   name="detector"):
    """Fit a YOLOv2 model on uint8 frames (N, h, w, 3) with their boxes (model-input pixels), augmented anew
    each epoch. With val=(images, boxes): validation mAP@0.5 every cfg.validate_every epochs, early stopping
    after cfg.patience epochs without improvement, the best weights kept. BatchNorm statistics are settled on
    (up to SETTLE_FRAMES of) the training frames before each validation and at the end.

    Returns (model, history): history has the per-epoch "loss", and with val "val_epochs", "val_map50",
    "best_epoch", "best_map50"; "epochs_run" always."""
    import keras

    from host_tools.pipeline import train
    from host_tools.pipeline.region_loss import region_loss
    images = np.asarray(images)
    if images.shape[1:3] != (cfg.input_size[1], cfg.input_size[0]):
        raise DetectorError("images are %dx%d, the configuration's input is %dx%d"
                            % (images.shape[2], images.shape[1], *cfg.input_size))
    if not sum(len(b) for b in boxes):
        raise DetectorError("no boxes to learn from")
    train.set_seeds(seed)
    strat = train.get_strategy(strategy)
    data = _Batches(cfg, images, boxes, seed)
    with strat.scope():
        model = cfg.build(name)
        _init_region_bias(model, cfg)
        model.compile(optimizer=keras.optimizers.Adam(_schedule(cfg, len(data))),
                      loss=region_loss(cfg.anchors, cfg.classes, cfg.loss))
    settle = _settler(model, images, seed)
    state = {"val_epochs": [], "val_map50": [], "best_epoch": 0, "gain_epoch": 0, "best_map50": -1.0, "best": None}
    callbacks = [train.progress_callback(cfg.epochs, desc)]
    if val is not None:
        callbacks.insert(0, _validation(cfg, settle, val, state))
    hist = model.fit(data.dataset(), epochs=cfg.epochs, steps_per_epoch=len(data), shuffle=False, verbose=0,
                     callbacks=callbacks)
    if state["best"] is not None:
        model.set_weights(state["best"])
    else:
        settle()
    out = {k: [float(v) for v in vs] for k, vs in hist.history.items()}
    out["epochs_run"] = len(out.get("loss", []))
    if val is not None:
        out.update({k: state[k] for k in ("val_epochs", "val_map50", "best_epoch", "best_map50")})
    return model, out


def _settler(model, images, seed):
    """settle(): BatchNorm moving statistics from a fixed sample of the un-augmented training frames."""
    from host_tools.pipeline.train import BatchNormSettler
    pick = np.sort(np.random.default_rng(seed).permutation(len(images))[:SETTLE_FRAMES])
    settler = BatchNormSettler(model, batch=PREDICT_BATCH)
    return lambda: settler(images[pick])


def _validation(cfg, settle, val, state):
    """Keras callback: validation mAP@0.5 every few epochs (BatchNorm settled first), the best weights kept
    (ties go to the later, longer-trained ones), training stopped after cfg.patience epochs without a gain."""
    import keras
    val_images, val_boxes = val

    class Validation(keras.callbacks.Callback):
        predict = None

        def on_epoch_end(self, epoch, logs=None):
            done, st = epoch + 1, state
            if done != cfg.epochs and (done % cfg.validate_every or done < cfg.validate_from * cfg.epochs):
                return
            settle()
            self.predict = self.predict or keras_predictor(self.model)    # traced once
            m = map50(self.predict, val_images, val_boxes, cfg)
            st["val_epochs"].append(done)
            st["val_map50"].append(m)
            if logs is not None:
                logs["val_map50"] = m
            if m > st["best_map50"]:
                st["gain_epoch"] = done
            if m >= st["best_map50"]:
                st["best_map50"], st["best_epoch"], st["best"] = m, done, self.model.get_weights()
            if done - st["gain_epoch"] >= cfg.patience:
                self.model.stop_training = True

    return Validation()


# ---------------------------------------------------------------- evaluation

def decode(out_hwc, cfg: DetectorConfig, threshold=None):
    """Boxes from one (H, W, C) model output, through the firmware's decoder (the map transposed to (C, H, W))."""
    from host_tools.kmodel.yolo import region_decode
    return region_decode(np.transpose(np.asarray(out_hwc, np.float32), (2, 0, 1)), list(cfg.anchors),
                         cfg.threshold if threshold is None else threshold, cfg.nms, *cfg.input_size)


def evaluate(outputs_hwc, truths, cfg: DetectorConfig, threshold=EVAL_THRESHOLD):
    """mAP@0.5 and counts of model outputs (N, H, W, C) against the true boxes (model-input pixels)."""
    dets = [decode(o, cfg, threshold) for o in outputs_hwc]
    m, aps = average_precision(dets, truths, cfg.classes)
    return {"map50": m, "ap50": aps, "detections": int(sum(len(d) for d in dets)),
            "truths": int(sum(len(t) for t in truths))}


def map50(predict, images, boxes, cfg: DetectorConfig) -> float:
    """Validation mAP@0.5: `predict` maps uint8 frames (N, h, w, 3) to raw region maps (N, H, W, C) (float;
    from Keras, LiteRT int8 or the kmodel emulator), decoded like the firmware with the manifest's NMS."""
    return evaluate(predict(np.asarray(images)), boxes, cfg)["map50"]


def keras_predictor(model):
    """The Keras model in inference mode through one traced function, PREDICT_BATCH frames at a time (calling
    it eagerly costs several times its arithmetic on these small batches)."""
    import tensorflow as tf

    from host_tools.pipeline.train import to_input
    fn = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    return lambda x: np.concatenate([fn(to_input(x[i:i + PREDICT_BATCH])).numpy()
                                     for i in range(0, len(x), PREDICT_BATCH)])


def int8_predictor(tflite_bytes):
    from host_tools.pipeline.quantize import run_int8
    return lambda x: run_int8(tflite_bytes, x)


def kmodel_predictor(km, progress=False):
    """The KPU emulator on each frame's planar bytes (what the board hands the KPU), outputs as (N, H, W, C)."""
    from host_tools.pipeline.evaluate import kmodel_outputs
    return lambda x: kmodel_outputs(km, x, "kmodel on validation", progress).transpose(0, 2, 3, 1)
