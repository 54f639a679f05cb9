"""The TinyML slides' CIFAR-10 net and `train --dataset cifar10` on a small set in Keras' cache layout."""
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

# The slides' layer list: (Keras layer type, filters or units or None) in order, BatchNorm + ReLU after each conv.
SLIDES = ([("Conv2D", 16), ("BatchNormalization", None), ("ReLU", None)]
          + [x for f, pool in ((24, True), (48, True), (96, False), (192, True))
             for x in [("DepthwiseConv2D", None), ("BatchNormalization", None), ("ReLU", None),
                       ("Conv2D", f), ("BatchNormalization", None), ("ReLU", None)]
             + ([("MaxPooling2D", None)] if pool else [])]
          + [("Flatten", None), ("Dropout", None), ("Dense", 10), ("Softmax", None)])


def test_cifar_mobilenet_is_the_slides_net_layer_for_layer():
    from host_tools.pipeline import arch
    m = arch.cifar_mobilenet()
    ours = [(type(L).__name__, getattr(L, "filters", None) or getattr(L, "units", None)) for L in m.layers[1:]]
    assert ours == SLIDES
    assert m.count_params() == 60194
    assert m.input_shape == (None, 32, 32, 3)
    assert [L.rate for L in m.layers if type(L).__name__ == "Dropout"] == [0.2]
    assert all(L.use_bias for L in m.layers if hasattr(L, "use_bias"))


def test_cifar_mobilenet_passes_the_k210_check():
    from host_tools.pipeline import arch, checker
    rep = checker.check_keras(arch.cifar_mobilenet())
    assert rep.ok and rep.findings == [], rep.text()


def write_cifar_cache(keras_home, per_batch=20, seed=0):
    """CIFAR-10's python batches in Keras 3's cache layout, with learnable classes (a colour per class + noise)."""
    folder = Path(keras_home) / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    colours = rng.integers(0, 256, size=(10, 3))
    for name in ["data_batch_%d" % i for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, size=per_batch)
        img = colours[labels][:, :, None, None] + rng.normal(0, 20, size=(per_batch, 3, 32, 32))
        data = np.clip(img, 0, 255).astype(np.uint8).reshape(per_batch, 3072)
        with open(folder / name, "wb") as f:
            pickle.dump({b"batch_label": name.encode(), b"labels": labels.tolist(), b"data": data}, f)
    return folder


def _run(args, cwd, timeout=900, **env):
    return subprocess.run([sys.executable, "-m", "host_tools"] + args, cwd=cwd, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), **env), timeout=timeout)


def test_reads_the_batches_from_keras_cache(tmp_path, monkeypatch):
    from host_tools.pipeline import cifar10
    write_cifar_cache(tmp_path, per_batch=7)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    data = cifar10.classifier_data(cifar10.load())
    assert data.x_train_view.shape == (35, 32, 32, 3) and data.x_val.shape == (7, 32, 32, 3)
    assert data.names[0] == "airplane" and len(data.names) == 10
    assert data.sources[0].shape == (40, 40, 3)        # kept at the augmentation's source size


def test_a_broken_batch_names_the_file(tmp_path, monkeypatch):
    from host_tools.pipeline import cifar10
    from host_tools.pipeline.datasets import DatasetError
    folder = write_cifar_cache(tmp_path, per_batch=3)
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(DatasetError, match="data_batch_3: not a CIFAR-10 batch"):
        cifar10.load()


@pytest.mark.slow
def test_offline_and_uncached_is_one_line(tmp_path):
    # an unreachable proxy: the download fails at once whether or not this machine is online
    r = _run(["train", "--dataset", "cifar10", "--out", str(tmp_path / "out")], tmp_path,
             KERAS_HOME=str(tmp_path / "empty"), https_proxy="http://127.0.0.1:9", HTTPS_PROXY="http://127.0.0.1:9")
    assert r.returncode == 1, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: --dataset cifar10: not in Keras' cache (%s" % (tmp_path / "empty")), r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_train_one_epoch_through_the_command(tmp_path):
    write_cifar_cache(tmp_path / "keras")
    out = tmp_path / "out"
    r = _run(["train", "--dataset", "cifar10", "--epochs", "1", "--out", str(out)], tmp_path,
             KERAS_HOME=str(tmp_path / "keras"))
    assert r.returncode in (0, 3), r.stderr       # 3: one epoch on 100 images may not beat chance, said so
    rep = json.loads((out / "cifar10_report.json").read_text())
    assert rep["settings"]["arch"] == "cifar-mobilenet" and rep["settings"]["input"] == [32, 32]
    assert rep["epochs_run"] == 1 and rep["data"] == "cifar10"
    assert sum(rep["photos"]["train"].values()) == 100 and sum(rep["photos"]["val"].values()) == 20
    assert set(rep["val"]) == {"float", "int8", "kmodel"}
    import keras
    assert keras.models.load_model(out / "cifar10.keras", compile=False).count_params() == 60194
    assert (out / "cifar10_int8.tflite").is_file()
    assert (out / "cifar10.kmodel").is_file() == (r.returncode == 0)


@pytest.mark.heavy
def test_full_cifar10_run_gives_the_slides_accuracy(tmp_path):
    """The real thing, when Keras' cache holds CIFAR-10: `train --dataset cifar10` with every default. The slides
    report 72.18 % test accuracy; prints our float / int8 / kmodel figures on the 10,000 test images."""
    from host_tools.pipeline import cifar10
    if cifar10.cached_folder() is None:
        pytest.skip("CIFAR-10 is not in Keras' cache (%s): run `python -m host_tools train --dataset cifar10` once "
                    "online" % (cifar10.keras_home() / "datasets"))
    out = tmp_path / "out"
    r = _run(["train", "--dataset", "cifar10", "--out", str(out)], tmp_path, timeout=6 * 3600)
    assert r.returncode == 0, r.stderr
    rep = json.loads((out / "cifar10_report.json").read_text())
    print("\ncifar10 test accuracy: float %(float).4f, int8 %(int8).4f, kmodel %(kmodel).4f" % rep["val"])
    assert rep["val"]["kmodel"] > 0.65
