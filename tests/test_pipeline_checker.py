"""The K210 checker: one test per rule (index, name and rule of the finding), tflite front end, memory advice."""
import pytest

import keras  # noqa: E402
from keras import layers  # noqa: E402

from host_tools.pipeline import checker  # noqa: E402


def _model(shape, *stack):
    inp = keras.Input(shape, name="input")
    x = inp
    for layer in stack:
        x = layer(x)
    return keras.Model(inp, x)


def _only(rep, rule):
    hits = [f for f in rep.findings if f.rule == rule]
    assert len(hits) == 1, rep.text()
    return hits[0]


def _good():
    return [layers.Conv2D(8, 3, padding="same", name="ok_conv")]


@pytest.mark.parametrize("rule,shape,bad,name,index,text", [
    (checker.KERNEL, (32, 32, 3), layers.Conv2D(8, 5, padding="same", name="k5"), "k5", 2, "5x5"),
    (checker.STRIDE, (32, 32, 3), layers.Conv2D(8, 3, strides=3, name="s3"), "s3", 2, "stride 3x3"),
    (checker.PADDING, (32, 32, 3), layers.Conv2D(8, 3, strides=2, padding="same", name="same2"), "same2", 2,
     "bottom/right"),
    (checker.ODD_SIZE, (31, 31, 3), layers.Conv2D(8, 3, strides=2, padding="same", name="odd2"), "odd2", 2,
     "floor"),
    (checker.PRELU, (32, 32, 3), layers.PReLU(name="prelu"), "prelu", 2, "PReLU"),
    (checker.CHANNELS, (8, 8, 3), layers.Conv2D(2048, 1, name="wide"), "wide", 2, "2048 channels"),
    (checker.OP, (32, 32, 3), layers.GlobalMaxPooling2D(name="gmp"), "gmp", 2, "GLOBAL_MAX_POOL2D"),
    (checker.OP, (32, 32, 3), layers.UpSampling2D(name="up"), "up", 2, "UpSampling2D"),
    (checker.POOL, (32, 32, 3), layers.MaxPooling2D(3, 2, name="mp3"), "mp3", 2, "3x3 stride 2"),
    (checker.ACTIVATION, (32, 32, 3), layers.Activation("sigmoid", name="sig"), "sig", 2, "sigmoid"),
])
def test_each_rule_names_layer_index_and_rule(rule, shape, bad, name, index, text):
    rep = checker.check_keras(_model(shape, *_good(), bad))
    f = _only(rep, rule)
    assert (f.index, f.name) == (index, name)
    assert text in f.message
    assert ("layer %d %s: [%s]" % (index, name, rule)) in rep.text()
    assert not rep.ok


def test_asymmetric_zero_padding_names_the_pad_layer():
    rep = checker.check_keras(_model((32, 32, 3), layers.ZeroPadding2D(((0, 1), (0, 1)), name="pad"),
                                     layers.DepthwiseConv2D(3, strides=2, name="dw")))
    f = _only(rep, checker.PADDING)
    assert (f.index, f.name) == (2, "dw") and "pad pads ((0, 1), (0, 1))" in f.message


def test_input_above_qvga_is_reported_at_the_input():
    f = _only(checker.check_keras(_model((480, 640, 3), *_good())), checker.INPUT)
    assert (f.index, f.name) == (0, "input") and "640x480" in f.message


def test_sequential_model_input_is_checked_too():
    m = keras.Sequential([keras.Input((480, 640, 3)), layers.Conv2D(4, 3, padding="same", name="c")])
    f = _only(checker.check_keras(m), checker.INPUT)
    assert f.index == -1 and str(f).startswith("input input: [input-size]")


def test_feature_map_above_kpu_ram():
    # 64 channels of 320x240: one channel per row, 5 rows of 64 bytes per line -> 4.7 MiB of KPU RAM
    f = _only(checker.check_keras(_model((240, 320, 3), layers.Conv2D(64, 3, padding="same", name="big"))),
              checker.KPU_RAM)
    assert f.name == "big" and "2048 KiB" in f.message


def test_add_is_not_lowered():
    inp = keras.Input((16, 16, 8))
    a = layers.Conv2D(8, 3, padding="same", name="a")(inp)
    out = layers.Add(name="residual")([inp, a])
    f = _only(checker.check_keras(keras.Model(inp, out)), checker.OP)
    assert f.name == "residual" and "Add" in f.message


def test_valid_model_has_no_findings_and_fits():
    m = _model((64, 64, 3), layers.ZeroPadding2D(((1, 1), (1, 1))), layers.Conv2D(16, 3, strides=2),
               layers.ReLU(6.0), layers.DepthwiseConv2D(3, padding="same"), layers.Conv2D(32, 1),
               layers.LeakyReLU(0.1), layers.MaxPooling2D(2), layers.GlobalAveragePooling2D(), layers.Dense(10),
               layers.Softmax())
    rep = checker.check_keras(m)
    assert rep.ok and rep.findings == []
    assert rep.memory.fits == {"full": True, "minimum": True}
    assert any("fits the full firmware" in a for a in rep.advice)


def _heavy(n_layers, cin, cout):
    """n 3x3 convs of cin->cout channels on a 4x4 map: int8 weights 9*cin*cout bytes each."""
    stack = [layers.Conv2D(cin, 1, name="expand")] + [layers.Conv2D(cout if i % 2 == 0 else cin, 3, padding="same",
                                                                      name="heavy%d" % i) for i in range(n_layers)]
    return _model((8, 8, 3), *stack)


def test_memory_advice_minimum_firmware_then_load_flash_then_smaller():
    # about 3.4 MiB of weights: over the full build's 2 MiB, inside the minimum build's 4 MiB
    rep = checker.check_keras(_heavy(2, 384, 512))
    assert rep.memory.fits == {"full": False, "minimum": True}
    assert any("minimum firmware" in a and "load_flash" in a for a in rep.advice), rep.advice
    # about 6.8 MiB, each layer 1.7 MiB: only kpu.load_flash, or a narrower model
    rep = checker.check_keras(_heavy(4, 384, 512))
    assert rep.memory.fits == {"full": False, "minimum": False}
    assert any("kpu.load_flash" in a for a in rep.advice) and any("width x0." in a for a in rep.advice)
    # one 3x3 1024->1024 layer is 9 MiB: even load_flash cannot stream it
    rep = checker.check_keras(_heavy(1, 1024, 1024))
    assert any("too big even for kpu.load_flash" in a for a in rep.advice)


def test_tflite_front_end_reports_the_same_rules_at_op_indices():
    import tensorflow as tf
    m = _model((32, 32, 3), layers.Conv2D(8, 3, strides=2, padding="same", name="same2"), layers.PReLU(name="pr"),
               layers.Conv2D(8, 5, padding="same", name="k5"), layers.GlobalAveragePooling2D(), layers.Dense(4))
    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    rep = checker.check_tflite(conv.convert(), "m.tflite")
    rules = {f.rule: f for f in rep.findings}
    assert set(rules) == {checker.PADDING, checker.PRELU, checker.KERNEL}, rep.text()
    assert rules[checker.PADDING].index < rules[checker.PRELU].index < rules[checker.KERNEL].index
    assert "same2" in rules[checker.PADDING].name and "k5" in rules[checker.KERNEL].name
