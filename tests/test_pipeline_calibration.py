"""Calibration methods: minmax / percentile / kld give different activation ranges on a model with outliers, each
through TFLite's own quantizer; the histogram rules on known distributions; `quantize --calibration` and its
table."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from host_tools.pipeline import calibration as C

ROOT = Path(__file__).resolve().parents[1]


def _hist(x, lo=None, hi=None):
    lo = float(x.min()) if lo is None else lo
    hi = float(x.max()) if hi is None else hi
    e = C.edges(lo, hi)
    k = np.clip(((x - e[0]) / (e[-1] - e[0]) * (len(e) - 1)).astype(np.int64), 0, len(e) - 2)
    return (np.bincount(k, minlength=len(e) - 1), e), lo, hi


def test_percentile_clips_the_rare_extremes_and_keeps_zero_inside():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.uniform(0, 1, 100000), [50.0] * 5])      # 5 outliers in 100,005 values
    h, lo, hi = _hist(x, lo=0.0)                                     # after a ReLU
    assert C.clipped_range(h, lo, hi, C.Calibration("minmax")) == (0.0, 50.0)
    lo2, hi2 = C.clipped_range(h, lo, hi, C.Calibration("percentile", 99.99))
    assert lo2 == 0.0 and 0.99 < hi2 < 1.05
    lo3, hi3 = C.clipped_range(h, lo, hi, C.Calibration("percentile", 100.0))
    assert hi3 == pytest.approx(50.0)


def test_kld_clips_a_long_sparse_tail_and_keeps_a_smooth_distribution():
    rng = np.random.default_rng(1)
    smooth = np.abs(rng.normal(size=1_000_000))
    h, lo, hi = _hist(smooth)
    assert C.clipped_range(h, lo, hi, C.Calibration("kld"))[1] > 0.8 * hi     # little to gain by clipping
    tail = np.concatenate([smooth, rng.uniform(0, 200, 200)])                 # a few huge outliers
    h, lo, hi = _hist(tail)
    t = C.clipped_range(h, lo, hi, C.Calibration("kld"))[1]
    assert 3.0 < t < 0.2 * hi
    signed = np.concatenate([rng.normal(size=1_000_000), [-150.0, 120.0]])
    h, lo, hi = _hist(signed)
    a, b = C.clipped_range(h, lo, hi, C.Calibration("kld"))
    assert -20 < a < -3 and 3 < b < 20 and a == -b                           # symmetric on |x|


def test_bad_settings_name_the_option():
    with pytest.raises(C.CalibrationError, match="--calibration must be one of minmax, percentile, kld"):
        C.Calibration("l2")
    with pytest.raises(C.CalibrationError, match="--percentile"):
        C.Calibration("percentile", 101)


def _outlier_model():
    """Conv 1x1 with ReLU whose activations are small on ordinary images and huge on rare bright ones, then a
    dense layer: the case where minmax wastes the int8 range on outliers."""
    import keras
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 1, activation="relu", name="conv")(inp)
    x = keras.layers.Flatten()(x)
    out = keras.layers.Dense(3, name="dense")(x)
    m = keras.Model(inp, out)
    rng = np.random.default_rng(0)
    m.get_layer("conv").set_weights([np.abs(rng.normal(size=(1, 1, 3, 4))).astype(np.float32),
                                     np.zeros(4, np.float32)])
    m.get_layer("dense").set_weights([rng.normal(size=(256, 3)).astype(np.float32) * 0.1,
                                      np.zeros(3, np.float32)])
    return m


def _activation_scale(tfl, shape):
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_content=tfl)
    found = [float(d["quantization"][0]) for d in it.get_tensor_details()
             if d["dtype"] == np.int8 and list(d["shape"]) == list(shape)]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.slow
def test_the_methods_differ_on_a_model_with_outliers_and_clipping_helps_the_ordinary_images():
    from host_tools.pipeline import quantize
    model = _outlier_model()
    rng = np.random.default_rng(2)
    ordinary = rng.uniform(0.0, 0.1, size=(300, 8, 8, 3)).astype(np.float32)     # dim images
    calib = ordinary.copy()
    calib[:3, :2, :2] = 1.0                                   # a bright spot in 3 frames: 0.05% of the values
    calib = quantize.representative(calib, 300)
    tfl = {m: quantize.to_int8_tflite(model, calib, C.Calibration(m, 99.9)) for m in C.METHODS}
    scales = {m: _activation_scale(t, (1, 8, 8, 4)) for m, t in tfl.items()}     # the conv's output
    assert scales["percentile"] < scales["minmax"] / 3, scales
    assert scales["kld"] < scales["minmax"] / 2, scales
    assert len({round(s, 9) for s in scales.values()}) == 3, scales               # three different ranges
    test = (ordinary[:100] * 255).round().astype(np.uint8)
    ref = model.predict(test.astype(np.float32) / 255, verbose=0)
    err = {m: np.abs(quantize.run_int8(t, test) - ref).mean() for m, t in tfl.items()}
    assert err["percentile"] < err["minmax"] / 2 and err["kld"] < err["minmax"] / 2, err
    for t in tfl.values():                        # every method's model keeps the camera-byte input
        assert quantize.input_quantization(t) == pytest.approx((1 / 255, -128))


@pytest.mark.slow
def test_quantize_command_tables_every_method(tmp_path):
    """`quantize --calibration percentile` on class folders: all three methods measured float / int8 / kmodel, the
    chosen one written."""
    import keras
    from PIL import Image
    from host_tools.pipeline import arch
    data = tmp_path / "data"
    rng = np.random.default_rng(0)
    for c, colour in enumerate([(200, 30, 30), (30, 200, 30)]):
        (data / str(c)).mkdir(parents=True)
        for i in range(6):
            im = np.clip(np.array(colour) + rng.normal(0, 25, size=(40, 40, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(im).save(data / str(c) / ("%d.png" % i))
    m = arch.small_mobilenet(32, 2, widths=(8, 16))
    m.save(tmp_path / "m.keras")
    r = subprocess.run([sys.executable, "-m", "host_tools", "quantize", str(tmp_path / "m.keras"), "--data",
                        str(data), "--calibration", "percentile", "--percentile", "99.9"], cwd=tmp_path,
                       capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=600)
    assert r.returncode == 0, r.stderr
    assert "| percentile 99.9 |" in r.stdout and "| kld |" in r.stdout and "| minmax |" in r.stdout
    rep = json.loads((tmp_path / "m_int8_calibration.json").read_text())
    assert [x["method"] for x in rep["methods"]] == list(C.METHODS) and rep["images"] == 12
    assert all(set(x) == {"method", "float", "int8", "kmodel"} for x in rep["methods"])
    assert (tmp_path / "m_int8.tflite").is_file()
    r = subprocess.run([sys.executable, "-m", "host_tools", "quantize", str(tmp_path / "m.keras"), "--data",
                        str(data), "--calibration", "l2"], cwd=tmp_path, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), timeout=600)
    assert r.returncode == 2 and "--calibration" in r.stderr
