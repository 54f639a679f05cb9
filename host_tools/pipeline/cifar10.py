"""`train --dataset cifar10`: CIFAR-10 as Keras caches it, as a ClassifierData (the test batch is the validation set).

Keras' loader (keras.datasets.cifar10.load_data) downloads the archive once into its cache
($KERAS_HOME or ~/.keras, then datasets/cifar-10-batches-py-target/cifar-10-batches-py/) and reads the pickled
batches there. Once they are in the cache we read those same batches ourselves: load_data insists on 10,000
images per batch and re-hashes the 170 MB archive on every call, so a small set in the same layout (the tests)
could not go through it. Uncached, load_data does the download; offline, that is one error line.
"""
import os
import pickle
from pathlib import Path

import numpy as np

from host_tools.pipeline.datasets import ClassifierData, DatasetError

NAME = "cifar10"
SIDE = 32
LABELS = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TRAIN_BATCHES = tuple("data_batch_%d" % i for i in range(1, 6))
TEST_BATCH = "test_batch"
# Keras 3 extracts into <fname>/ (load_data's fname); Keras 2 extracted next to the archive.
CACHE_FOLDERS = ("cifar-10-batches-py-target/cifar-10-batches-py", "cifar-10-batches-py")


def keras_home() -> Path:
    return Path(os.environ.get("KERAS_HOME") or Path("~/.keras").expanduser())


def cached_folder():
    """The cache folder holding the batches, or None."""
    for rel in CACHE_FOLDERS:
        d = keras_home() / "datasets" / rel
        if (d / TEST_BATCH).is_file():
            return d
    return None


def read_batch(path):
    """One pickled batch -> (N, 32, 32, 3) uint8 HWC, (N,) labels; the layout of the CIFAR 'python version'."""
    try:
        with open(path, "rb") as f:
            d = pickle.load(f, encoding="bytes")
        d = {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in d.items()}
        data = np.asarray(d["data"], dtype=np.uint8).reshape(-1, 3, SIDE, SIDE)
        labels = np.asarray(d["labels"], dtype=np.int64)
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, ValueError, TypeError) as e:
        raise DatasetError("%s: not a CIFAR-10 batch (a pickled dict with 'data' (N x 3072 bytes) and 'labels'): "
                           "%s" % (path, e)) from None
    if len(labels) != len(data) or (len(labels) and not 0 <= labels.min() <= labels.max() < len(LABELS)):
        raise DatasetError("%s: %d images but %d labels in 0..9" % (path, len(data), len(labels)))
    return data.transpose(0, 2, 3, 1), labels


def read_folder(folder):
    """((x_train, y_train), (x_test, y_test)) from the batches in a cache folder."""
    folder = Path(folder)
    missing = [b for b in TRAIN_BATCHES + (TEST_BATCH,) if not (folder / b).is_file()]
    if missing:
        raise DatasetError("%s: CIFAR-10 batch file(s) missing: %s" % (folder, ", ".join(missing)))
    parts = [read_batch(folder / b) for b in TRAIN_BATCHES]
    x_test, y_test = read_batch(folder / TEST_BATCH)
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])), (x_test, y_test)


def load():
    """((x_train, y_train), (x_test, y_test)) uint8 HWC / int labels: from Keras' cache, else Keras' download."""
    folder = cached_folder()
    if folder is not None:
        return read_folder(folder)
    import keras
    try:
        (x_tr, y_tr), (x_te, y_te) = keras.datasets.cifar10.load_data()
    except Exception as e:      # get_file raises a bare Exception for a failed fetch
        raise DatasetError("--dataset cifar10: not in Keras' cache (%s) and the download failed (%s); connect "
                           "once to let Keras fetch it, or set KERAS_HOME to a folder holding "
                           "datasets/cifar-10-batches-py-target/cifar-10-batches-py"
                           % (keras_home() / "datasets", str(e).splitlines()[0] if str(e) else type(e).__name__)
                           ) from None
    return (x_tr, y_tr.reshape(-1).astype(np.int64)), (x_te, y_te.reshape(-1).astype(np.int64))


def classifier_data(arrays, size=(SIDE, SIDE)) -> ClassifierData:
    """CIFAR-10 (`load()`'s arrays) for the classifier flow: the training images (kept at the augmentation's source
    size) and the test images as the validation set, each at `size` (w, h)."""
    from PIL import Image

    from host_tools.pipeline.camera_augment import source_size
    (x_tr, y_tr), (x_te, y_te) = arrays
    if len(y_tr) == 0 or len(y_te) == 0:
        raise DatasetError("--dataset cifar10: the cached batches hold no training or no test images")

    def resized(images, wh):
        if tuple(wh) == (SIDE, SIDE):
            return images
        return np.stack([np.asarray(Image.fromarray(im).resize(tuple(wh), Image.BILINEAR)) for im in images])

    w, h = size
    return ClassifierData(names=list(LABELS), train_files=[], val_files=[],
                          sources=list(resized(x_tr, source_size(w, h))), y_train=y_tr,
                          x_train_view=resized(x_tr, (w, h)), x_val=resized(x_te, (w, h)), y_val=y_te)
