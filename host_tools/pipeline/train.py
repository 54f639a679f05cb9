"""Training: seeds, tf.distribute strategies, progress, loss/accuracy curves and confusion matrix PNGs."""
import os

import numpy as np

from host_tools.pipeline import camera_augment
from host_tools.pipeline.defaults import steps_per_epoch

STRATEGIES = ("default", "mirrored", "multi-worker")


def to_input(images_u8) -> np.ndarray:
    """The model's float input: RGB pixel / 255, so the int8 tflite input is the camera byte."""
    return np.asarray(images_u8, dtype=np.float32) / 255.0


def set_seeds(seed: int):
    import keras
    keras.utils.set_random_seed(seed)


def get_strategy(name: str):
    """tf.distribute strategy by name: default (one device), mirrored (all local devices), multi-worker
    (machines listed in the TF_CONFIG environment variable, each running the same command)."""
    import tensorflow as tf
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi-worker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multi-worker needs TF_CONFIG (cluster and task) set on every worker")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError("--strategy must be one of %s, got %r" % (", ".join(STRATEGIES), name))


def progress_callback(total_epochs, desc):
    """Epoch progress bar with the latest metrics (readable in logs, unlike Keras' per-step bar)."""
    import keras
    from tqdm import tqdm

    class _Progress(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.bar = tqdm(total=total_epochs, desc=desc, unit="epoch", dynamic_ncols=True)

        def on_epoch_end(self, epoch, logs=None):
            self.bar.set_postfix({k: "%.4f" % v for k, v in (logs or {}).items() if k != "learning_rate"})
            self.bar.update(1)

        def on_train_end(self, logs=None):
            self.bar.close()

    return _Progress()


SETTLE_IMAGES = 1024  # BatchNorm statistics are measured on at most this many training photos
MIN_GAIN = 0.98      # a validation loss must drop by 2% to count as progress when the accuracy stays the same
LOSS_FLOOR = 0.01    # ... and be above this: every photo right at ~99% confidence leaves nothing worth more epochs


class _Views:
    """Batches of fresh augmented views of the training sources, reshuffled each epoch, weighted so that every
    class counts the same whatever its photo count."""

    def __init__(self, data, cfg, rng):
        import keras

        class Seq(keras.utils.PyDataset):
            def __len__(s):
                return steps_per_epoch(len(data.y_train), cfg.batch)

            def __getitem__(s, i):
                idx = s.order[i * cfg.batch:(i + 1) * cfg.batch]
                x = camera_augment.batch(data.sources, idx, cfg.input[0], cfg.input[1], rng, cfg.augment)
                return to_input(x), data.y_train[idx], s.weight[data.y_train[idx]]

            def on_epoch_end(s):
                s.order = rng.permutation(len(data.y_train))

        counts = np.bincount(data.y_train, minlength=len(data.names)).astype(np.float64)
        self.seq = Seq()
        self.seq.weight = (len(data.y_train) / (len(counts) * np.maximum(counts, 1))).astype(np.float32)
        self.seq.on_epoch_end()


class BatchNormSettler:
    """Sets every trainable BatchNormalization's moving mean and variance to their average over a set of images
    (the training photos as the board sees them), computed as in training (each layer on batch-normalised inputs).

    On a small set the usual moving average (momentum 0.99) is still far from the data after a few hundred steps:
    training accuracy reaches 1.0 while inference normalises with wrong statistics and predicts one class.
    """

    def __init__(self, model, batch=256):
        import keras
        import tensorflow as tf
        self.model, self.batch = model, batch
        self.bns = [L for L in model.layers if isinstance(L, keras.layers.BatchNormalization) and L.trainable]
        # traced with momentum 0: each call leaves exactly its batch's statistics in the moving variables
        self.step = tf.function(lambda x: model(x, training=True), reduce_retracing=True)

    def __call__(self, images_u8):
        if not self.bns or len(images_u8) == 0:
            return
        saved = [L.momentum for L in self.bns]
        sums = [(0.0, 0.0)] * len(self.bns)
        n = 0
        try:
            for L in self.bns:
                L.momentum = 0.0
            for i in range(0, len(images_u8), self.batch):
                x = images_u8[i:i + self.batch]
                self.step(to_input(x))
                w = len(x)
                # sums of E[x] and E[x^2] over batches pool into the statistics of the whole set (batch variances
                # alone would miss the spread between the batches' means)
                stats = [(L.moving_mean.numpy(), L.moving_variance.numpy()) for L in self.bns]
                sums = [(a + m * w, b + (v + m * m) * w) for (a, b), (m, v) in zip(sums, stats)]
                n += w
            for L, (a, b) in zip(self.bns, sums):
                L.moving_mean.assign(a / n)
                L.moving_variance.assign(np.maximum(b / n - (a / n) ** 2, 0.0))
        finally:
            for L, m in zip(self.bns, saved):
                L.momentum = m


def predict(model, images_u8, batch=256) -> np.ndarray:
    """Inference-mode outputs of a Keras model on uint8 images, without Keras' predict loop (small sets)."""
    return np.concatenate([model(to_input(images_u8[i:i + batch]), training=False).numpy()
                           for i in range(0, len(images_u8), batch)])


class _BestOnValidation:
    """After each epoch: settle BatchNorm, measure the validation split, keep the best weights (accuracy, then
    loss), stop after `patience` epochs without progress; at the end the best weights are back in the model."""

    def __init__(self, data, patience, history, phase, prior=None):
        import keras

        outer = self

        class CB(keras.callbacks.Callback):
            def on_epoch_end(s, epoch, logs=None):
                outer.epoch_end(s.model, epoch, logs if logs is not None else {})

            def on_train_end(s, logs=None):
                if outer.best_weights is not None:     # BatchNorm statistics included, settled then
                    s.model.set_weights(outer.best_weights)

        self.data, self.patience, self.history, self.phase = data, patience, history, phase
        self.settle = None
        views = data.x_train_view         # plenty for the statistics, and cheap to run every epoch
        self.views = views if len(views) <= SETTLE_IMAGES else \
            views[np.sort(np.random.default_rng(0).choice(len(views), SETTLE_IMAGES, replace=False))]
        self.best, self.best_weights, self.best_epoch, self.wait = None, None, -1, 0
        if prior is not None:       # a later phase only replaces the weights when it does better
            self.best, self.best_weights, self.best_epoch = prior.best, prior.best_weights, prior.best_epoch
        self.callback = CB()

    def epoch_end(self, model, epoch, logs):
        if self.settle is None:
            self.settle = BatchNormSettler(model)
        self.settle(self.views)
        p = predict(model, self.data.x_val)
        y = self.data.y_val
        acc = float((p.argmax(1) == y).mean())
        loss = float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-7, 1.0)).mean())
        logs["val_accuracy"], logs["val_loss"] = acc, loss
        # for the verdict's correction for keeping the best epoch: epochs that answer every validation photo alike
        # are one look, not many (evaluate.classifier_verdict)
        self.history.setdefault("val_answers", set()).add(p.argmax(1).astype(np.int32).tobytes())
        for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
            self.history.setdefault(k, []).append(float(logs.get(k, np.nan)))
        self.history.setdefault("phase", []).append(self.phase)
        # better: more right, or as many right with a clearly lower loss (while the loss is above the floor)
        key = (acc, -loss)
        if self.best is None or acc > self.best[0] or (acc == self.best[0] and loss < -self.best[1] * MIN_GAIN
                                                       and -self.best[1] > LOSS_FLOOR):
            self.best, self.best_weights, self.wait = key, model.get_weights(), 0
            self.best_epoch = len(self.history["phase"]) - 1
        else:
            self.wait += 1
            if self.wait >= self.patience:
                model.stop_training = True


def _fit(model, data, cfg, epochs, lr, rng, history, phase, desc, prior=None):
    import keras
    history.setdefault("trainable_weights", {})[phase] = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    steps = steps_per_epoch(len(data.y_train), cfg.batch)
    warm = min(cfg.warmup_epochs * steps, epochs * steps // 4)
    sched = keras.optimizers.schedules.CosineDecay(lr * 0.1 if warm else lr, max(1, epochs * steps - warm),
                                                   alpha=0.02, warmup_target=lr if warm else None,
                                                   warmup_steps=warm)
    model.compile(optimizer=keras.optimizers.Adam(sched), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    best = _BestOnValidation(data, cfg.patience, history, phase, prior)
    model.fit(_Views(data, cfg, rng).seq, epochs=epochs, verbose=0,
              callbacks=[best.callback, progress_callback(epochs, desc)])
    return best


def train_classifier(build_model, data, cfg, *, strategy="default", desc="train", log=None):
    """Build (inside the strategy's scope) and train a softmax classifier on `data` (datasets.ClassifierData).

    From scratch: one run. With pretrained weights (cfg.transfer): the base frozen while the new head learns
    (cfg.head_epochs), then the whole net fine-tuned at cfg.fine_tune_lr with its BatchNorm layers kept frozen,
    as Keras advises for fine-tuning. Returns (model with the best validation weights, history dict: per epoch
    loss / accuracy on augmented views, val_loss / val_accuracy, phase; best_epoch; trainable_weights per phase;
    val_answers: the distinct answer sets on the validation photos over all epochs).
    """
    import keras

    from host_tools.pipeline import arch
    set_seeds(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    history = {}
    strat = get_strategy(strategy)
    with strat.scope():
        model = build_model()
    if cfg.transfer:
        base = arch.base_layers(model)
        for L in base:
            L.trainable = False
        with strat.scope():
            best = _fit(model, data, cfg, cfg.head_epochs, cfg.lr, rng, history, "head", desc + " (head)")
        for L in base:
            L.trainable = not isinstance(L, keras.layers.BatchNormalization)
        with strat.scope():
            best = _fit(model, data, cfg, cfg.epochs, cfg.fine_tune_lr, rng, history, "fine-tune",
                        desc + " (fine-tune)", prior=best)
    else:
        with strat.scope():
            best = _fit(model, data, cfg, cfg.epochs, cfg.lr, rng, history, "train", desc)
    history["best_epoch"] = best.best_epoch
    return model, history


def confusion_matrix(y_true, y_pred, n):
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def save_curves(history, path, title):
    """Loss and accuracy (or any other metric pairs) per epoch, train vs validation, as one PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    metrics = [k for k, v in history.items() if not k.startswith("val_") and k != "learning_rate"
               and isinstance(v, list) and v and isinstance(v[0], (int, float))]
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    for ax, k in zip(axes[0], metrics):
        ax.plot(range(1, len(history[k]) + 1), history[k], label="train")
        if "val_" + k in history:
            ax.plot(range(1, len(history["val_" + k]) + 1), history["val_" + k], label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(k)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    _save_fig(fig, path)


def save_confusion(cm, labels, path, title):
    import warnings
    with warnings.catch_warnings():     # a label in a script the plot's font lacks is drawn as boxes, not a warning
        warnings.filterwarnings("ignore", "Glyph .* missing from font", UserWarning)
        _plot_confusion(cm, labels, path, title)


def _plot_confusion(cm, labels, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.45 * n, 0.8 + 0.45 * n))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(n), labels, rotation=90)
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            if cm[i, j]:
                ax.text(j, i, str(cm[i, j]), ha="center", va="center", fontsize=7,
                        color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_title(title)
    fig.tight_layout()
    _save_fig(fig, path)


def _save_fig(fig, path):
    import io

    import matplotlib.pyplot as plt

    from host_tools.files import write_atomic
    buf = io.BytesIO()
    # Fixed metadata so the same figures give the same bytes (models/ is committed).
    fig.savefig(buf, format="png", dpi=80, metadata={"Software": None})
    plt.close(fig)
    write_atomic(path, buf.getvalue())
