"""Architectures: paper parameter counts, K210 validity, Keras weight files by name, stride-2 = KPU semantics."""
import numpy as np
import pytest

import keras  # noqa: E402

from host_tools.pipeline import arch, checker  # noqa: E402

# MobileNetV1 paper, Table 6/7: millions of parameters at 224 with 1000 classes.
PAPER_MILLIONS = {1.0: 4.2, 0.75: 2.6, 0.5: 1.3, 0.25: 0.5}
KERAS_TOTAL = {1.0: 4253864, 0.75: 2601976, 0.5: 1342536, 0.25: 475544}  # keras.applications.MobileNet


@pytest.mark.parametrize("alpha", sorted(PAPER_MILLIONS))
def test_mobilenet_param_counts_match_paper(alpha):
    m = arch.mobilenet_v1(224, alpha, 1000)
    trainable = sum(int(np.prod(v.shape)) for v in m.trainable_weights)
    assert round(trainable / 1e6, 1) == PAPER_MILLIONS[alpha]
    assert m.count_params() == KERAS_TOTAL[alpha]      # same layers as Keras' own, only the padding differs


def test_the_smallest_mobilenet_passes_the_checker_and_fits_the_full_firmware():
    rep = checker.check_keras(arch.mobilenet_v1(224, 0.25, 1000))
    assert rep.findings == [], rep.text()
    assert (rep.memory.build, rep.memory.load) == ("full", "ram")


def test_stride2_layers_compute_what_the_kpu_computes():
    """ZeroPadding2D((1,1),(1,1)) + VALID stride 2 == stride-1 conv with pad 1, then the top-left of each 2x2."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(1, 12, 16, 3)).astype(np.float32)
    w = rng.normal(size=(3, 3, 3, 4)).astype(np.float32)
    inp = keras.Input((12, 16, 3))
    ours = keras.Model(inp, keras.layers.Conv2D(4, 3, strides=2, use_bias=False)(
        keras.layers.ZeroPadding2D(((1, 1), (1, 1)))(inp)))
    full = keras.Model(inp, keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inp))
    same2 = keras.Model(inp, keras.layers.Conv2D(4, 3, strides=2, padding="same", use_bias=False)(inp))
    for m in (ours, full, same2):
        m.layers[-1].set_weights([w])
    kpu = full.predict(x, verbose=0)[:, ::2, ::2]
    np.testing.assert_allclose(ours.predict(x, verbose=0), kpu, rtol=1e-5, atol=1e-5)
    assert np.abs(same2.predict(x, verbose=0) - kpu).max() > 0.1   # SAME samples the other phase


def _save_legacy_h5(model, path):
    import h5py
    from keras.src.legacy.saving import legacy_h5_format
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


def test_loads_keras_mobilenet_no_top_weight_file_by_name(tmp_path):
    src = keras.applications.MobileNet(input_shape=(128, 128, 3), alpha=0.25, include_top=False, weights=None)
    rng = np.random.default_rng(1)
    src.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in src.get_weights()])
    path = tmp_path / "mobilenet_2_5_128_tf_no_top.h5"
    _save_legacy_h5(src, path)
    ours = arch.mobilenet_v1(128, 0.25, classes=5)
    loaded = arch.load_imagenet_weights(ours, path)
    assert "conv1" in loaded and "conv_pw_13_bn" in loaded
    for name in ("conv1", "conv_dw_2", "conv_pw_13", "conv_pw_13_bn"):
        for a, b in zip(ours.get_layer(name).get_weights(), src.get_layer(name).get_weights()):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(arch.ArchError, match="conv1|shape|mismatch"):
        arch.load_imagenet_weights(arch.mobilenet_v1(128, 0.5, classes=5), path)


def test_refuses_what_the_k210_cannot_run():
    with pytest.raises(arch.ArchError, match="alpha"):
        arch.mobilenet_v1(224, 0.3)
    with pytest.raises(arch.ArchError, match="96..224"):
        arch.mobilenet_v1(256, 0.25)
    with pytest.raises(arch.ArchError, match="5 anchors"):
        arch.yolo_v2([1, 1, 2, 2, 3, 3], 1)


def test_yolo_grid_at_qvga_is_the_firmware_grid_and_valid():
    m = arch.yolo_v2([1, 1, 2, 2, 3, 3, 4, 4, 5, 5], 1, (240, 320))
    assert m.output_shape == (None, 7, 10, 5 * (5 + 1))
    assert checker.check_keras(m).findings == []
    mb = arch.yolo_v2([1, 1, 2, 2, 3, 3, 4, 4, 5, 5], 2, (240, 320), backbone="mobilenet", alpha=0.25)
    assert mb.output_shape == (None, 7, 10, 5 * (5 + 2))
    assert checker.check_keras(mb).findings == []
