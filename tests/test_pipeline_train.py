"""Classifier training on small data: settings from the data, camera-like views, BatchNorm statistics, the
verdict against chance, pretrained MobileNet weights."""
import numpy as np
import pytest

import keras  # noqa: E402

from host_tools.k210 import pixels
from host_tools.pipeline import arch, camera_augment, defaults, evaluate, pretrained, train


def test_defaults_scale_epochs_with_the_data_and_user_settings_win():
    small, big = defaults.default_config(60, 3), defaults.default_config(5000, 3)
    assert small.arch == "small" and small.input == (64, 64) and small.weights is None
    assert small.epochs > big.epochs >= defaults.MIN_EPOCHS and small.batch < big.batch
    # about the same number of optimizer steps for a small set (capped for tiny ones)
    steps = defaults.steps_per_epoch(int(400 * 0.8), defaults.default_config(400, 3).batch)
    assert defaults.default_config(400, 3).epochs * steps >= defaults.TARGET_STEPS
    assert small.patience >= 10 and small.warmup_epochs > 0 and small.augment.flip
    given = defaults.default_config(60, 3, epochs=7, batch=4, input=(96, 64))
    assert (given.epochs, given.batch, given.input) == (7, 4, (96, 64))
    tl = defaults.default_config(60, 3, weights="imagenet")
    assert (tl.arch, tl.input, tl.alpha, tl.transfer) == ("mobilenet", (224, 224), 0.75, True)
    assert tl.head_epochs > 0 and tl.fine_tune_lr < tl.lr
    with pytest.raises(defaults.ConfigError, match="--arch"):
        defaults.default_config(60, 3, arch="resnet")
    with pytest.raises(defaults.ConfigError, match="--val"):
        defaults.default_config(60, 3, val_fraction=1.5)
    with pytest.raises(defaults.ConfigError, match="at least 2 classes"):
        defaults.default_config(60, 1)


def test_views_are_camera_bytes_cropped_from_the_framed_source():
    rng = np.random.default_rng(0)
    src = np.zeros((80, 80, 3), np.uint8)
    src[:, 40:] = 255                                     # white right half
    views = camera_augment.batch([src] * 16, np.arange(16), 64, 64, rng, camera_augment.Augment())
    assert views.shape == (16, 64, 64, 3) and views.dtype == np.uint8
    # every byte is one the firmware's RGB565 path can produce
    assert np.array_equal(views, pixels.rgb565_to_888(pixels.rgb888_to_565(views)))
    left_white = (views[:, :, :8].mean(axis=(1, 2, 3)) > 128).sum()
    assert 0 < left_white < 16                            # mirrored about half the time
    assert len({v.tobytes() for v in views}) == 16        # a new view each time
    plain = camera_augment.batch([src], [0], 64, 64, rng, camera_augment.Augment.none())[0]
    assert plain[:, :28].max() < 10 and plain[:, 36:].min() > 245


def test_settled_batchnorm_holds_the_statistics_of_the_training_photos():
    """After a few steps at momentum 0.99 the moving statistics are still near their start (0 and 1), and a model
    trained to 1.0 predicts one class at inference; settling sets them to the data's own."""
    keras.utils.set_random_seed(0)
    m = arch.small_mobilenet(32, 2, widths=(8, 16))
    rng = np.random.default_rng(0)
    x = rng.integers(100, 256, size=(40, 32, 32, 3), dtype=np.uint8)
    x[24:] //= 3                                          # the last batches darker than the first
    bn = m.get_layer("stem_bn")
    stem = keras.Model(m.input, m.get_layer("stem").output)
    want = stem.predict(train.to_input(x), verbose=0).reshape(-1, bn.moving_mean.shape[0])
    assert np.abs(bn.moving_mean.numpy() - want.mean(0)).max() > 0.05
    settle = train.BatchNormSettler(m, batch=16)          # three batches: 16, 16, 8 photos
    settle(x)
    np.testing.assert_allclose(bn.moving_mean.numpy(), want.mean(0), rtol=1e-4, atol=1e-5)
    # the variance of all 40 photos, not the mean of the batches' own variances (which misses their means' spread)
    np.testing.assert_allclose(bn.moving_variance.numpy(), want.var(0), rtol=1e-3, atol=1e-6)
    assert bn.momentum == 0.99
    # the deeper layers' statistics are those of training mode (batch-normalised inputs), averaged by photo count
    before = m.get_layer("block2_pw_bn").moving_variance.numpy().copy()
    settle(x)
    np.testing.assert_allclose(m.get_layer("block2_pw_bn").moving_variance.numpy(), before, rtol=1e-4)


@pytest.mark.parametrize("right,n,looks,classes,useful", [
    (28, 28, 50, 2, True),      # all right: no doubt
    (19, 28, 47, 2, False),     # 0.68 (p = 0.044): the best of 47 noisy epochs on a random-label set
    (19, 28, 1, 2, True),       # the same at a single look
    (8, 8, 3, 2, True),         # all 8 right from a model that gave 3 different answer sets over 120 epochs
    (8, 8, 20, 2, False),       # ... or from one whose answers kept changing
    (17, 28, 1, 2, False),      # 0.61: within chance + 0.1
    (30, 36, 80, 3, True),
    (13, 36, 80, 3, False),     # 0.36 against a third
])
def test_verdict_against_chance(right, n, looks, classes, useful):
    y = np.arange(n) % classes
    v = evaluate.classifier_verdict(right / n, y, classes, looks)
    assert v.useful == useful and v.chance == pytest.approx(1 / classes)
    assert ("no better than chance" in v.message) == (not useful)


def test_chance_is_the_most_common_class_of_an_imbalanced_split():
    y = np.array([0] * 18 + [1] * 2)
    assert evaluate.chance_accuracy(y, 2) == 0.9
    assert not evaluate.classifier_verdict(0.95, y, 2).useful        # 19/20: hardly better than always "0"
    assert not evaluate.detector_verdict(0.05).useful and evaluate.detector_verdict(0.4).useful


# ---------------------------------------------------------------- pretrained weights

def _save_no_top(alpha, size, path, seed=1):
    """A Keras MobileNet no-top .h5 (legacy format, as keras.applications publishes them), random weights."""
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    src = keras.applications.MobileNet(input_shape=(size, size, 3), alpha=alpha, include_top=False, weights=None)
    rng = np.random.default_rng(seed)
    src.set_weights([rng.normal(0, 0.2, size=w.shape).astype(np.float32) if w.ndim else w
                     for w in src.get_weights()])
    for L in src.layers:        # BatchNorm variances must stay positive
        if isinstance(L, keras.layers.BatchNormalization):
            g, b, mu, var = L.get_weights()
            L.set_weights([g, b, mu, np.abs(var) + 0.5])
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, src)
    return path


def test_input_scaling_is_folded_into_the_first_conv(tmp_path):
    """Weights trained on pixel/127.5 - 1 give the same features from pixel/255 once folded (zero padding aside)."""
    h5 = _save_no_top(0.25, 128, tmp_path / "mobilenet_2_5_128_tf_no_top.h5")
    plain, folded = arch.mobilenet_v1(128, 0.25, 3), arch.mobilenet_v1(128, 0.25, 3)
    arch.load_imagenet_weights(plain, h5)
    pretrained.load(folded, str(h5), 0.25, 128)
    x = np.random.default_rng(0).integers(0, 256, size=(2, 128, 128, 3), dtype=np.uint8)
    f_plain = keras.Model(plain.input, plain.get_layer("conv1_relu").output)
    f_folded = keras.Model(folded.input, folded.get_layer("conv1_relu").output)
    a = f_plain.predict(pretrained.imagenet_input(x), verbose=0)
    b = f_folded.predict(train.to_input(x), verbose=0)
    np.testing.assert_allclose(b[:, 1:, 1:], a[:, 1:, 1:], atol=2e-4)   # the top/left row sees the padding
    assert np.abs(b[:, 0] - a[:, 0]).max() > 1e-3


def test_imagenet_weights_come_from_keras_cache_or_say_how_to_get_them(tmp_path, monkeypatch):
    assert pretrained.imagenet_file_name(0.75, 224) == "mobilenet_7_5_224_tf_no_top.h5"
    assert pretrained.imagenet_file_name(0.5, 96) == "mobilenet_5_0_128_tf_no_top.h5"
    cache = tmp_path / "keras"
    (cache / "models").mkdir(parents=True)
    _save_no_top(0.25, 128, cache / "models" / "mobilenet_2_5_128_tf_no_top.h5")
    m = arch.mobilenet_v1(128, 0.25, 2)
    loaded = pretrained.load(m, "imagenet", 0.25, 128, cache_dir=str(cache))
    assert "conv_pw_13" in loaded

    import urllib.error
    import urllib.request

    def offline(*a, **k):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")
    monkeypatch.setattr(urllib.request, "urlretrieve", offline)
    monkeypatch.setattr("keras.src.utils.file_utils.urlretrieve", offline, raising=False)
    with pytest.raises(pretrained.WeightsError) as e:
        pretrained.load(arch.mobilenet_v1(160, 0.5, 2), "imagenet", 0.5, 160, cache_dir=str(cache))
    msg = str(e.value)
    assert "\n" not in msg and "mobilenet_5_0_160_tf_no_top.h5" in msg and "--weights PATH" in msg
    assert not (cache / "models" / "mobilenet_5_0_160_tf_no_top.h5").exists()
    with pytest.raises(pretrained.WeightsError, match="no such file"):
        pretrained.load(m, str(tmp_path / "missing.h5"), 0.25, 128)
    with pytest.raises(pretrained.WeightsError, match=r"no_top.h5: Shape mismatch in layer #1 \(named conv1\)"):
        pretrained.load(arch.mobilenet_v1(128, 0.5, 2), str(cache / "models" / "mobilenet_2_5_128_tf_no_top.h5"),
                        0.5, 128)


@pytest.mark.slow
def test_seed_tutorial_path_mobilenet_075_224_frozen_then_fine_tuned_and_compiled(tmp_path):
    """MobileNetV1 0.75 at 224, weights from a no-top .h5, base frozen while the head learns, then fine-tuned with
    BatchNorm frozen; int8 tflite; compiled; the kmodel names the same class as LiteRT's int8 model."""
    from host_tools import kmodel
    from host_tools.compiler import compile_file
    from host_tools.pipeline import datasets, evaluate, quantize
    from test_pipeline_userflow import colour_photos
    h5 = _save_no_top(0.75, 224, tmp_path / "mobilenet_7_5_224_tf_no_top.h5")
    data = colour_photos(tmp_path / "d", 8)
    cfg = defaults.default_config(16, 2, weights=str(h5), epochs=1, head_epochs=1)
    assert (cfg.arch, cfg.alpha, cfg.input) == ("mobilenet", 0.75, (224, 224))
    d = datasets.load_classifier_data(data, cfg.input, val_fraction=cfg.val_fraction, progress=False)

    def build():
        m = arch.mobilenet_v1(224, 0.75, 2, name="seed")
        pretrained.load(m, str(h5), 0.75, 224)
        return m
    model, hist = train.train_classifier(build, d, cfg, desc="seed")
    assert hist["phase"] == ["head", "fine-tune"]
    head = 768 * 2 + 2
    convs = sum(int(np.prod(w.shape)) for L in model.layers
                if isinstance(L, (keras.layers.Conv2D, keras.layers.DepthwiseConv2D))
                for w in L.weights)
    assert hist["trainable_weights"] == {"head": head, "fine-tune": convs + head}    # BatchNorm stays frozen
    loaded = arch.mobilenet_v1(224, 0.75, 2)
    pretrained.load(loaded, str(h5), 0.75, 224)
    for name in ("conv_pw_7_bn", "conv_dw_13_bn"):                 # frozen BatchNorm: ImageNet statistics kept
        for a, b in zip(model.get_layer(name).get_weights(), loaded.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)

    tfl = quantize.to_int8_tflite(model, quantize.representative(train.to_input(d.x_train_view), 50))
    (tmp_path / "seed_int8.tflite").write_bytes(tfl)
    man = compile_file(tmp_path / "seed_int8.tflite", tmp_path / "km", "seed", "classifier", ["blue", "red"])
    assert (man.input["w"], man.input["h"]) == (224, 224)
    x = np.concatenate([d.x_val, d.x_train_view])
    p_int8 = quantize.run_int8(tfl, x)
    p_km = evaluate.kmodel_outputs(kmodel.load(tmp_path / "km" / man.kmodel), x, progress=False).reshape(len(x), -1)
    assert (p_km.argmax(1) == p_int8.argmax(1)).all(), np.c_[p_int8, p_km]
