"""Compile small Keras models (built and quantized here, seeds fixed) and compare the KPU emulator with LiteRT."""
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytestmark = pytest.mark.slow      # TensorFlow conversion of a few models: ~15 s of CPU together

import keras  # noqa: E402
from keras import layers  # noqa: E402

from host_tools.compiler import CompileError, compile_file, compile_tflite  # noqa: E402
from host_tools.kmodel import load, run  # noqa: E402
from host_tools.kmodel.reader import NOT_IN_STOCK_SDK  # noqa: E402
from host_tools.pipeline.quantize import litert_int8  # noqa: E402


def _quantize(model, calib):
    from host_tools.pipeline.quantize import to_int8_tflite
    return to_int8_tflite(model, calib)


def _bn_random(model, seed=1):
    """Give BatchNormalization layers non-trivial statistics so folding is exercised."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.3, n), rng.normal(0, 0.2, n),
                               rng.uniform(0.5, 2, n)])


def _litert(path, images, resolver=None):
    """Dequantized LiteRT outputs, channels first, for uint8 HWC images, and the output step."""
    y, step = litert_int8(path, images, resolver)
    return np.array([o.transpose(2, 0, 1) if o.ndim == 3 else o.reshape(-1, 1, 1) for o in y], np.float64), step


def _emulate(kmodel, images):
    return np.array([run(kmodel, img.transpose(2, 0, 1).copy())[0] for img in images])


@pytest.fixture(scope="module")
def feature_model(tmp_path_factory):
    """Every KPU feature at once: explicit padding + stride 2, BN, ReLU, depthwise + ReLU6, LeakyReLU, max pool,
    depthwise stride 2 (moved into the next 1x1 conv), a 3x3 conv with a linear output map."""
    keras.utils.set_random_seed(0)
    i = keras.Input((32, 32, 3))
    x = layers.ZeroPadding2D(((1, 1), (1, 1)))(i)
    x = layers.Conv2D(8, 3, strides=2, use_bias=False)(x)
    x = layers.ReLU()(layers.BatchNormalization()(x))
    x = layers.DepthwiseConv2D(3, padding="same")(x)
    x = layers.ReLU(6.0)(layers.BatchNormalization()(x))
    x = layers.Conv2D(16, 1)(x)
    x = layers.LeakyReLU(0.1)(x)
    x = layers.MaxPooling2D()(x)
    x = layers.ZeroPadding2D(((1, 1), (1, 1)))(x)
    x = layers.DepthwiseConv2D(3, strides=2)(x)
    x = layers.ReLU(6.0)(layers.BatchNormalization()(x))
    x = layers.Conv2D(24, 1, activation="relu")(x)
    x = layers.Conv2D(12, 3, padding="same")(x)
    m = keras.Model(i, x)
    _bn_random(m)
    rng = np.random.default_rng(0)
    path = tmp_path_factory.mktemp("feat") / "feat.tflite"
    path.write_bytes(_quantize(m, rng.random((32, 32, 32, 3), dtype=np.float32)))
    return path


@pytest.fixture(scope="module")
def digits_model(tmp_path_factory):
    """A tiny classifier trained for a few epochs on scikit-learn's digits (8x8 -> 16x16 RGB)."""
    from sklearn.datasets import load_digits
    keras.utils.set_random_seed(0)
    d = load_digits()
    x = np.repeat(np.kron(d.images / 16.0, np.ones((2, 2)))[..., None], 3, axis=3).astype(np.float32)
    y = d.target
    rng = np.random.default_rng(0)
    idx = rng.permutation(len(x))
    tr, va = idx[:1400], idx[1400:]
    i = keras.Input((16, 16, 3))
    h = layers.Conv2D(16, 3, padding="same", activation="relu")(i)
    h = layers.MaxPooling2D()(h)
    h = layers.DepthwiseConv2D(3, padding="same")(h)
    h = layers.ReLU(6.0)(layers.BatchNormalization()(h))
    h = layers.Conv2D(32, 1, activation="relu")(h)
    h = layers.GlobalAveragePooling2D()(h)
    h = layers.Dense(10)(h)
    h = layers.Softmax()(h)
    m = keras.Model(i, h)
    m.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    m.fit(x[tr], y[tr], epochs=40, batch_size=64, verbose=0)
    float_acc = float((m.predict(x[va], verbose=0).argmax(1) == y[va]).mean())
    path = tmp_path_factory.mktemp("digits") / "digits.tflite"
    path.write_bytes(_quantize(m, x[tr[:200]]))
    images = np.round(x[va] * 255).astype(np.uint8)
    return path, images, y[va], float_acc


def test_feature_model_matches_litert_within_an_output_step(feature_model):
    c = compile_tflite(feature_model)
    types = [L.type_name for L in c.kmodel.layers]
    assert types == ["K210_CONV"] * 6 + ["DEQUANTIZE"]
    pools = [L.regs.kernel_pool_type_cfg.pool_type for L in c.kmodel.layers[:6]]
    # stride-2 conv samples (5); max pool fused (1); the depthwise stride 2 moved into the next 1x1 conv
    assert pools == [5, 0, 1, 0, 5, 0]
    rng = np.random.default_rng(3)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(6)]
    images += [np.clip(np.cumsum(rng.normal(0, 12, (32, 32, 3)), axis=1) + 128, 0, 255).astype(np.uint8)
               for _ in range(6)]
    ref, step = _litert(feature_model, images)
    got = _emulate(c.kmodel, images)
    assert got.shape == ref.shape == (12, 12, 4, 4)
    err = np.abs(got - ref) / step
    # random weights amplify the one-step double rounding of LeakyReLU; a wrong phase or scale gives tens
    assert err.mean() < 0.6, err.mean()
    assert np.percentile(err, 99) <= 4


def test_moved_depthwise_stride_is_computed_only_where_sampled(feature_model, monkeypatch):
    """The depthwise layer whose stride 2 went into the next 1x1 conv is left to that reader (kpu_ram.Deferred),
    which computes only the pixels it samples: never the whole map, and the outputs are the reference's."""
    from host_tools.kmodel.emulator import plans
    from host_tools.kmodel.kpu_ram import Deferred
    km = compile_tflite(feature_model).kmodel
    conv = plans(km)
    assert km.__dict__["_deferred"] == {3}
    rng = np.random.default_rng(4)
    images = [rng.integers(0, 256, (3, 32, 32), dtype=np.uint8) for _ in range(4)]
    want = [run(km, x, exact=True)[0] for x in images]

    def whole_map(self):
        raise AssertionError("the deferred depthwise map was computed in full")
    monkeypatch.setattr(Deferred, "array", whole_map)
    for x, y in zip(images, want):
        np.testing.assert_array_equal(run(km, x)[0], y)
    assert conv[3].fast.prep.dw.f32 == 2          # the four-phase float32 path, not the whole plane sampled


def test_trained_classifier_agrees_with_litert_and_keeps_accuracy(digits_model, tmp_path):
    path, images, labels, float_acc = digits_model
    man = compile_file(path, tmp_path, "digits", "classifier", [str(d) for d in range(10)])
    km = load(tmp_path / "digits.kmodel")
    assert not any(L.type in NOT_IN_STOCK_SDK for L in km.layers)
    assert man.outputs == [{"shape": [10, 1, 1], "type": "f"}] and man.fits == {"full": True, "minimum": True}
    ref, step = _litert(path, images)
    got = _emulate(km, images)
    ref, got = ref.reshape(len(images), -1), got.reshape(len(images), -1)
    top_got = got.argmax(1)
    # same top-1: our class is LiteRT's largest output (its quantized softmax can tie two classes)
    same = ref[np.arange(len(images)), top_got] == ref.max(1)
    assert same.mean() >= 0.99, same.mean()
    assert (np.abs(got - ref) / step).mean() <= 1.0
    kmodel_acc = (top_got == labels).mean()
    assert float_acc >= 0.7          # it learned something (a tiny net, 40 quick epochs)
    assert kmodel_acc >= float_acc - 0.01, (float_acc, kmodel_acc)


def _tflite_of(tmp_path, name, build):
    keras.utils.set_random_seed(0)
    i = keras.Input((16, 16, 3))
    m = keras.Model(i, build(i))
    path = tmp_path / (name + ".tflite")
    path.write_bytes(_quantize(m, np.random.default_rng(0).random((8, 16, 16, 3), dtype=np.float32)))
    return path


@pytest.mark.parametrize("name, build, op_index, op, rule", [
    ("same_stride2", lambda i: layers.Conv2D(8, 3, strides=2, padding="same")(i), 0, "CONV_2D",
     "padding"),
    ("kernel5", lambda i: layers.Conv2D(8, 5, padding="same")(i), 0, "CONV_2D", "kernel"),
    ("tanh", lambda i: layers.Activation("tanh")(layers.Conv2D(8, 3, padding="same")(i)), 1, "TANH",
     "op"),
])
def test_refusals_name_layer_op_and_rule_and_write_nothing(tmp_path, name, build, op_index, op, rule):
    path = _tflite_of(tmp_path, name, build)
    out = tmp_path / "out"
    with pytest.raises(CompileError) as e:
        compile_file(path, out, name, "classifier", ["a"])
    err = e.value
    assert (err.op_index, err.op, err.rule) == (op_index, op, rule)
    assert "layer %d (%s)" % (op_index, op) in str(err) and rule in str(err)
    assert not out.exists() or not any(out.iterdir())


@pytest.fixture(scope="module")
def branch_model(tmp_path_factory):
    """Two branches concatenated, a 2x2/1 SAME max pool, Keras Flatten (shape ops) and a 2048-input dense (CPU)."""
    keras.utils.set_random_seed(0)
    i = keras.Input((16, 16, 3))
    a = layers.Conv2D(8, 3, padding="same", activation="relu")(i)
    b = layers.Conv2D(4, 1, activation="relu6")(i)
    x = layers.Conv2D(8, 3, padding="same")(layers.Concatenate()([a, b]))
    x = layers.MaxPooling2D(2, strides=1, padding="same")(x)
    y = layers.Dense(5)(layers.Flatten()(x))
    path = tmp_path_factory.mktemp("branch") / "branch.tflite"
    path.write_bytes(_quantize(keras.Model(i, y), np.random.default_rng(0).random((16, 16, 16, 3), np.float32)))
    return path


def test_concat_flatten_and_cpu_dense_match_litert(branch_model):
    c = compile_tflite(branch_model)
    assert [L.type_name for L in c.kmodel.layers] == ["K210_CONV", "K210_CONV", "CONCAT", "K210_UPLOAD", "K210_CONV",
                                                      "DEQUANTIZE", "FULLY_CONNECTED"]
    assert c.kmodel.layers[4].regs.kernel_pool_type_cfg.pool_type == 9
    rng = np.random.default_rng(5)
    images = [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(8)]
    ref, step = _litert(branch_model, images)
    got = _emulate(c.kmodel, images)
    assert np.abs(ref).max() > 10 * step                 # a live output, not all clamped
    # the float dense skips LiteRT's final rounding: a quarter step on average
    assert (np.abs(got - ref) / step).mean() < 0.5


def test_a_model_too_big_for_ram_gets_load_flash_on_the_build_its_layers_fit(tmp_path, monkeypatch):
    """Four 147 KB layers: kpu.load needs them all in the heap, kpu.load_flash two layers' worth. With budgets
    where only the minimum build streams them, the manifest says load_flash and names that build alone."""
    from host_tools.k210 import firmware
    from host_tools.k210.bigendian import to_big_endian
    keras.utils.set_random_seed(0)
    i = keras.Input((16, 16, 3))
    x = layers.Conv2D(128, 3, padding="same")(i)
    for _ in range(4):
        x = layers.Conv2D(128, 3, padding="same", activation="relu")(x)
    y = layers.Dense(5)(layers.GlobalAveragePooling2D()(x))
    path = tmp_path / "deep.tflite"
    path.write_bytes(_quantize(keras.Model(i, y), np.random.default_rng(0).random((4, 16, 16, 3), np.float32)))
    info = compile_tflite(path).info
    assert info.heap_flash < info.heap
    between = (info.heap_flash + info.heap) // 2
    monkeypatch.setattr(firmware, "model_budget", lambda build: {"full": info.heap_flash - 1, "minimum": between}[build])
    man = compile_file(path, tmp_path, "deep", "classifier", list("abcde"))
    assert man.fits == {"full": False, "minimum": True} and man.load == "flash"
    assert man.big_endian == "deep_be.kmodel"
    le = (tmp_path / "deep.kmodel").read_bytes()
    assert (tmp_path / "deep_be.kmodel").read_bytes() == to_big_endian(le)
    monkeypatch.setattr(firmware, "model_budget", lambda build: info.heap_flash - 1)
    with pytest.raises(CompileError, match="loads on no firmware build") as e:
        compile_file(path, tmp_path / "none", "deep", "classifier", list("abcde"))
    assert e.value.rule == "memory" and not (tmp_path / "none").exists()


def test_a_feature_map_beyond_the_kpu_ram_is_refused_at_its_layer(tmp_path):
    keras.utils.set_random_seed(0)
    i = keras.Input((240, 320, 3))
    x = layers.MaxPooling2D(2)(layers.Conv2D(8, 3, padding="same")(i))
    x = layers.Conv2D(96, 1)(x)                      # 96 x 160x120 maps: 2.2 MiB of KPU RAM rows
    path = tmp_path / "big.tflite"
    path.write_bytes(_quantize(keras.Model(i, x), np.random.default_rng(0).random((2, 240, 320, 3), np.float32)))
    with pytest.raises(CompileError) as e:
        compile_file(path, tmp_path / "out", "big", "detector", ["a"], anchors=(1, 1))
    assert (e.value.op_index, e.value.op, e.value.rule) == (2, "CONV_2D", "kpu-ram")
    assert not (tmp_path / "out").exists()
