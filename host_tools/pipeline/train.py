"""Training: seeds, tf.distribute strategies, progress, loss/accuracy curves and confusion matrix PNGs."""
import os

import numpy as np

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


def train_classifier(build_model, x_train, y_train, x_val, y_val, *, epochs, batch_size=64, lr=2e-3,
                     strategy="default", seed=0, desc="train"):
    """Build (inside the strategy's scope), compile and fit a softmax classifier on uint8 images.

    Returns (model, history dict with loss / accuracy / val_loss / val_accuracy per epoch).
    """
    import keras
    set_seeds(seed)
    strat = get_strategy(strategy)
    with strat.scope():
        model = build_model()
        steps = int(np.ceil(len(x_train) / batch_size)) * epochs
        sched = keras.optimizers.schedules.CosineDecay(lr, steps, alpha=0.02)
        model.compile(optimizer=keras.optimizers.Adam(sched), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
    hist = model.fit(to_input(x_train), y_train, validation_data=(to_input(x_val), y_val), epochs=epochs,
                     batch_size=batch_size, shuffle=True, verbose=0, callbacks=[progress_callback(epochs, desc)])
    return model, {k: [float(v) for v in vs] for k, vs in hist.history.items()}


def confusion_matrix(y_true, y_pred, n):
    cm = np.zeros((n, n), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true), np.asarray(y_pred)), 1)
    return cm


def save_curves(history, path, title):
    """Loss and accuracy (or any other metric pairs) per epoch, train vs validation, as one PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    metrics = [k for k in history if not k.startswith("val_") and k != "learning_rate"]
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
