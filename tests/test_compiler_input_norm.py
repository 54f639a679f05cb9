"""compile --input-mean M --input-std S: a model trained on (pixel / 255 - M) / S takes the camera byte, and its
kmodel gives what LiteRT gives on the normalized model (the input quantization is the only difference)."""
import numpy as np
import pytest

from host_tools.__main__ import main as cli
from host_tools.kmodel import load, run

MEAN, STD = 0.45, 0.226          # ImageNet-like: a range of about [-2, 2.4], far from pixel / 255


def make_tflite(folder, lo=0, hi=256):
    """A small conv net on normalized input, int8 with its input range calibrated on pixels in [lo, hi)."""
    import tensorflow as tf
    tf.keras.utils.set_random_seed(7)
    x = tf.keras.Input((16, 16, 3))
    bias = tf.keras.initializers.RandomNormal(0.0, 0.5)      # non-zero biases: they are rescaled to the input
    y = tf.keras.layers.Conv2D(8, 3, padding="same", activation="relu", bias_initializer=bias)(x)
    y = tf.keras.layers.Conv2D(16, 3, padding="same", activation="relu")(y)
    y = tf.keras.layers.GlobalAveragePooling2D()(y)
    y = tf.keras.layers.Dense(5)(y)
    model = tf.keras.Model(x, y)
    rng = np.random.default_rng(1)
    pixels = rng.integers(lo, hi, (64, 16, 16, 3)).astype(np.float32)

    def gen():
        for p in pixels:
            yield [((p / 255.0 - MEAN) / STD)[None].astype(np.float32)]
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = gen
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    path = folder / "norm_int8.tflite"
    path.write_bytes(conv.convert())
    return path


@pytest.fixture(scope="module")
def normalized_tflite(tmp_path_factory):
    """Calibrated on the whole pixel range: its input scale is the camera's, (1 - 0) / 255 / S."""
    return make_tflite(tmp_path_factory.mktemp("norm"))


@pytest.fixture(scope="module")
def narrow_tflite(tmp_path_factory):
    """Calibrated on pixels 40..215 only: a finer input scale than the camera byte gives, so the first convs'
    biases are rescaled and LiteRT's own input grid differs from the kmodel's."""
    return make_tflite(tmp_path_factory.mktemp("narrow"), 40, 216)


def litert(path, images_u8):
    """LiteRT on the normalized model: each image normalized, then quantized with the tflite's own input scale."""
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_content=path.read_bytes())
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    (si, zi), (so, zo) = i["quantization"], o["quantization"]
    outs = []
    for img in images_u8:
        x = (img / 255.0 - MEAN) / STD
        it.set_tensor(i["index"], np.clip(np.round(x / si) + zi, -128, 127).astype(np.int8)[None])
        it.invoke()
        outs.append((it.get_tensor(o["index"]).astype(np.float64).reshape(-1) - zo) * so)
    return np.array(outs), so


def compiled(tflite, folder, mean=MEAN, std=STD):
    assert cli(["compile", str(tflite), "--out", str(folder), "--input-mean", str(mean), "--input-std",
                str(std)]) == 0
    return load(folder / "norm.kmodel")


def kmodel_outputs(km, images):
    return np.array([run(km, img.transpose(2, 0, 1))[0].reshape(-1) for img in images])


def test_kmodel_on_camera_bytes_equals_litert_on_normalized_input(normalized_tflite, tmp_path):
    images = np.random.default_rng(5).integers(0, 256, (24, 16, 16, 3)).astype(np.uint8)
    want, step = litert(normalized_tflite, images)
    got = kmodel_outputs(compiled(normalized_tflite, tmp_path), images)
    assert np.ptp(want) > 20 * step                   # many output steps wide: not a flat output's agreement
    assert np.abs(got - want).max() < 1e-6 * np.abs(want).max()   # byte for byte the same outputs


def test_with_its_own_input_scale_the_biases_follow(narrow_tflite, tmp_path):
    images = np.random.default_rng(6).integers(40, 216, (24, 16, 16, 3)).astype(np.uint8)
    want, step = litert(narrow_tflite, images)
    got = kmodel_outputs(compiled(narrow_tflite, tmp_path), images)
    diff = np.abs(got - want)
    # only LiteRT's finer input grid differs: within a few output steps, same top class
    assert diff.max() <= 3 * step and diff.mean() <= 0.75 * step, (diff.max() / step, diff.mean() / step)
    assert (got.argmax(1) == want.argmax(1)).mean() >= 0.9
    assert np.ptp(want) > 20 * step


def test_without_the_options_the_normalized_input_is_refused(normalized_tflite, tmp_path, capsys):
    assert cli(["compile", str(normalized_tflite), "--out", str(tmp_path / "m")]) == 1
    err = capsys.readouterr().err
    assert "the camera byte needs scale 1/255 and zero point -128" in err and "--input-mean/--input-std" in err


def test_a_wrong_normalization_gives_other_outputs(normalized_tflite, tmp_path):
    """The options matter: compiled for another mean and std, the outputs move far away."""
    images = np.random.default_rng(5).integers(0, 256, (8, 16, 16, 3)).astype(np.uint8)
    want, step = litert(normalized_tflite, images)
    got = kmodel_outputs(compiled(normalized_tflite, tmp_path, 0.2, 0.3), images)
    assert np.abs(got - want).max() > 10 * step


def test_bad_values_are_refused(normalized_tflite, tmp_path, capsys):
    assert cli(["compile", str(normalized_tflite), "--out", str(tmp_path / "m"), "--input-std", "0"]) == 1
    assert "--input-std 0: must be > 0" in capsys.readouterr().err
    assert cli(["compile", str(normalized_tflite), "--out", str(tmp_path / "m"), "--input-mean", "1.5"]) == 1
    assert "--input-mean 1.5: must be in [0, 1]" in capsys.readouterr().err
