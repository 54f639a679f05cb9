"""int8 quantization: the input is the camera byte; LiteRT runs it; tf.distribute strategies train."""
import numpy as np
import pytest

import keras  # noqa: E402

from host_tools.pipeline import arch, quantize, train  # noqa: E402


def test_representative_spans_exactly_0_to_1():
    x = np.full((10, 8, 8, 3), 0.5, np.float32)
    r = quantize.representative(x, 4, seed=0)
    assert r.shape == (5, 8, 8, 3) and r.min() == 0.0 and r.max() == 1.0
    with pytest.raises(quantize.QuantizeError, match="empty"):
        quantize.representative(np.zeros((0, 8, 8, 3)), 4)


def test_int8_tflite_input_is_the_camera_byte_and_matches_float():
    keras.utils.set_random_seed(0)
    m = arch.small_mobilenet(32, 4, widths=(8, 16), name="tiny")
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(40, 32, 32, 3), dtype=np.uint8)
    tfl = quantize.to_int8_tflite(m, quantize.representative(train.to_input(imgs), 40))
    scale, zp = quantize.input_quantization(tfl)
    assert zp == -128 and scale == pytest.approx(1 / 255, rel=1e-6)
    p_f = m.predict(train.to_input(imgs[:8]), verbose=0)
    p_q = quantize.run_int8(tfl, imgs[:8])
    assert p_q.shape == p_f.shape and np.abs(p_q - p_f).max() < 0.05


def test_unsized_model_is_refused():
    inp = keras.Input((None, None, 3))
    m = keras.Model(inp, keras.layers.Conv2D(2, 1)(inp))
    with pytest.raises(quantize.QuantizeError, match="unsized input"):
        quantize.to_int8_tflite(m, np.zeros((1, 8, 8, 3), np.float32))


def test_strategy_names():
    with pytest.raises(ValueError, match="TF_CONFIG"):
        train.get_strategy("multi-worker")
    with pytest.raises(ValueError, match="--strategy must be one of"):
        train.get_strategy("tpu")
