"""check == compile: the checker runs the compiler, so on every model both accept or refuse alike, naming the same
layer index, op and rule (never a traceback); check lists every refusal; the memory verdict names the firmware
build and load mode, and the simulated board agrees with it."""
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
pytestmark = pytest.mark.slow      # TensorFlow conversion of two dozen tiny models

import keras  # noqa: E402
from keras import layers  # noqa: E402

from conftest import fixture_file  # noqa: E402
from host_tools.__main__ import main as cli  # noqa: E402
from host_tools.compiler import CompileError, compile_file, tflite_graph  # noqa: E402
from host_tools.k210 import rules  # noqa: E402
from host_tools.pipeline import checker  # noqa: E402


def _model(shape, *stack):
    keras.utils.set_random_seed(0)
    inp = keras.Input(shape, name="input")
    x = inp
    for layer in stack:
        x = layer(x) if not isinstance(layer, tuple) else layer[0](layer[1](x))
    return keras.Model(inp, x)


def _conv(*a, **k):
    return layers.Conv2D(*a, **k)


def _branch_add():
    keras.utils.set_random_seed(0)
    i = keras.Input((16, 16, 3))
    x = _conv(8, 3, padding="same")(i)
    return keras.Model(i, layers.Add(name="residual")([x, _conv(8, 3, padding="same")(x)]))


# name -> (model builder, what compile says: None = writes it, else (op index, op, rule))
CASES = {
    "same_stride2": (lambda: _model((16, 16, 3), _conv(8, 3, strides=2, padding="same")),
                     (0, "CONV_2D", "padding")),
    "valid_3x3": (lambda: _model((16, 16, 3), _conv(8, 3)), (0, "CONV_2D", "padding")),
    "kernel_5x5": (lambda: _model((16, 16, 3), _conv(8, 5, padding="same")), (0, "CONV_2D", "kernel")),
    "stride_3": (lambda: _model((18, 18, 3), layers.ZeroPadding2D(1), _conv(8, 3, strides=3)),
                 (1, "CONV_2D", "stride")),
    "prelu": (lambda: _model((16, 16, 3), _conv(8, 3, padding="same"), layers.PReLU()), (1, "PRELU", "op")),
    "max_pool_3x3": (lambda: _model((16, 16, 3), _conv(8, 3, padding="same"), layers.MaxPooling2D(3, 2)), None),
    "sigmoid": (lambda: _model((16, 16, 3), _conv(8, 3, padding="same"), layers.Activation("sigmoid")), None),
    "flatten_dense": (lambda: _model((16, 16, 3), _conv(8, 3, padding="same"), layers.Flatten(), layers.Dense(4)),
                      None),
    "map_2x2": (lambda: _model((8, 8, 3), _conv(8, 3, padding="same"), layers.MaxPooling2D(4),
                               _conv(8, 3, padding="same")), (2, "CONV_2D", "map-size")),
    "qvga_conv_gap": (lambda: _model((240, 320, 3), _conv(8, 3, padding="same"), layers.GlobalAveragePooling2D()),
                      (0, "CONV_2D", "channel-pixels")),
    "qvga_pooled_gap": (lambda: _model((240, 320, 3), _conv(8, 3, padding="same"), layers.MaxPooling2D(2),
                                       layers.GlobalAveragePooling2D()), None),
    "padded_stride2": (lambda: _model((16, 16, 3), layers.ZeroPadding2D(1), _conv(8, 3, strides=2),
                                      layers.ReLU()), None),
    "depthwise_relu6_leaky": (lambda: _model((16, 16, 3), _conv(8, 1), layers.DepthwiseConv2D(3, padding="same"),
                                             layers.ReLU(6.0), _conv(8, 1), layers.LeakyReLU(0.1)), None),
    "tanh": (lambda: _model((16, 16, 3), _conv(8, 3, padding="same"), layers.Activation("tanh")),
             (1, "TANH", "op")),
    "odd_stride2": (lambda: _model((15, 15, 3), layers.ZeroPadding2D(1), _conv(8, 3, strides=2)),
                    (0, "CONV_2D", "stride2-size")),      # the converter folds the pad into the conv
    "input_vga": (lambda: _model((480, 640, 3), _conv(4, 3, padding="same")), (None, None, "input")),
    "channels_2048": (lambda: _model((8, 8, 3), _conv(2048, 1)), (0, "CONV_2D", "channels")),
    "global_max_pool": (lambda: _model((16, 16, 3), _conv(8, 3, padding="same"), layers.GlobalMaxPooling2D()),
                        (1, "REDUCE_MAX", "op")),
    "kpu_ram": (lambda: _model((240, 320, 3), _conv(8, 3, padding="same"), layers.MaxPooling2D(2), _conv(96, 1),
                               _conv(96, 1)), (2, "CONV_2D", "kpu-ram")),
    "weight_loads": (lambda: _model((4, 4, 3), _conv(1024, 1), _conv(193, 3, padding="same")),   # 3 per load
                     (1, "CONV_2D", "weight-loads")),
    "upsampling": (lambda: _model((16, 16, 3), _conv(8, 3, padding="same"), layers.UpSampling2D()),
                   (1, "EXPAND_DIMS", "op")),        # how the converter writes Keras' UpSampling2D
    "depth_multiplier": (lambda: _model((16, 16, 3), layers.DepthwiseConv2D(3, padding="same",
                                                                            depth_multiplier=2)),
                         (0, "DEPTHWISE_CONV_2D", "depth-multiplier")),
    "residual_add": (_branch_add, (2, "ADD", "op")),
    "grayscale_softmax": (lambda: _model((32, 32, 1), layers.ZeroPadding2D(1), _conv(8, 3, strides=2),
                                         layers.ReLU(), layers.GlobalAveragePooling2D(), layers.Dense(3),
                                         layers.Softmax()), None),
}


def _compile_says(path, tmp_path):
    """None when compile writes the model, else (op index, op, rule) of its refusal; any other exception fails."""
    out = Path(tempfile.mkdtemp(dir=tmp_path)) / "out"
    try:
        compile_file(path, out, "m", "classifier", ["a", "b", "c", "d"])
    except CompileError as e:
        assert not out.exists() or not any(out.iterdir()), "a refused model left files behind"
        return e.op_index, e.op, e.rule
    return None


def _check_says(rep):
    return None if rep.ok else (rep.findings[0].index, rep.findings[0].op or None, rep.findings[0].rule)


@pytest.mark.parametrize("name", sorted(CASES))
def test_check_and_compile_agree(name, tmp_path):
    build, expected = CASES[name]
    model = build()
    data = checker.int8_tflite(model)
    path = tmp_path / (name + ".tflite")
    path.write_bytes(data)
    compiled = _compile_says(path, tmp_path)
    assert compiled == expected
    graph = tflite_graph.parse(data, str(path))
    rep = checker.check_graph(graph, checker.keras_names(graph, model))    # check_keras, its conversion done
    assert _check_says(rep) == compiled


def test_a_float_tflite_is_refused_alike(tmp_path):
    """A float image model without calibration images: its layers are checked, then the missing --dataset."""
    import tensorflow as tf
    m = _model((16, 16, 3), _conv(8, 3, padding="same"), _conv(8, 5, padding="same"))
    path = tmp_path / "float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(m).convert())
    rep = checker.check_file(path)
    assert _compile_says(path, tmp_path) == _check_says(rep) == (1, "CONV_2D", "kernel")
    assert [f.rule for f in rep.findings] == ["kernel", "calibration"], rep.text()


def test_iris_compiles_alike(tmp_path):
    """nncase's iris example: a float vector model, float CPU layers as ncc's --inference-type float made it."""
    path = fixture_file("nncase-iris", "iris.tflite")
    rep = checker.check_file(path)
    assert _compile_says(path, tmp_path) is None and _check_says(rep) is None


def test_check_lists_every_refusal_with_keras_names_where_compile_stops_at_the_first(tmp_path):
    m = _model((32, 32, 3), _conv(8, 3, strides=2, padding="same", name="same2"), layers.PReLU(name="pr"),
               _conv(8, 5, padding="same", name="k5"), layers.GlobalAveragePooling2D(), layers.Dense(4, name="fc"))
    rep = checker.check_keras(m)
    assert [(f.name, f.op, f.rule) for f in rep.findings] == [
        ("same2", "CONV_2D", "padding"), ("pr", "PRELU", "op"), ("k5", "CONV_2D", "kernel")], rep.text()
    path = tmp_path / "m.tflite"
    path.write_bytes(checker.int8_tflite(m))
    assert _compile_says(path, tmp_path) == (rep.findings[0].index, "CONV_2D", "padding")
    assert "layer 0 (CONV_2D) same2:" in rep.text() and "[rule: padding]" in rep.text()
    assert "memory: known once every layer compiles" in rep.text() and not rep.memory.known


def test_unsized_input_and_every_rule_id_is_known():
    m = keras.Sequential([keras.Input((None, None, 3)), _conv(4, 3, padding="same")])
    rep = checker.check_keras(m)
    assert [(f.index, f.rule) for f in rep.findings] == [(None, "input")] and not rep.ok
    assert set(rules.BY_ID) >= {r for _, e in CASES.values() if e for r in [e[2]]}


def test_a_small_model_fits_the_full_firmware_from_ram():
    rep = checker.check_keras(CASES["grayscale_softmax"][0]())
    m = rep.memory
    assert rep.ok and m.known and (m.build, m.load) == ("full", "ram") and m.fits == {"full": True, "minimum": True}
    assert rep.advice[0].startswith("fits the full firmware: kpu.load from RAM")


def test_memory_verdict_is_compiles_and_never_load_flash_where_the_layers_do_not_fit(tmp_path, monkeypatch):
    """Budgets where load_flash's two layer buffers fit only the minimum build: check and compile both name the
    minimum build with load_flash; with no build big enough both refuse with the memory rule."""
    from host_tools.k210 import firmware
    m = _model((16, 16, 3), _conv(128, 3, padding="same"), *[_conv(128, 3, padding="same") for _ in range(4)],
               layers.GlobalAveragePooling2D(), layers.Dense(5))
    path = tmp_path / "deep.tflite"
    path.write_bytes(checker.int8_tflite(m))
    rep = checker.check_file(path)
    heap, heap_flash = rep.memory.heap, rep.memory.heap_flash
    assert heap_flash < heap
    monkeypatch.setattr(firmware, "model_budget", lambda b: {"full": heap_flash - 1, "minimum": heap - 1}[b])
    rep = checker.check_file(path)
    assert (rep.memory.build, rep.memory.load, rep.memory.fits) == ("minimum", "flash",
                                                                    {"full": False, "minimum": True})
    assert rep.advice[0].startswith("needs the minimum firmware build, with kpu.load_flash"), rep.advice
    man = compile_file(path, tmp_path / "out", "deep", "classifier", list("abcde"))
    assert (man.load, man.fits) == ("flash", {"full": False, "minimum": True})
    monkeypatch.setattr(firmware, "model_budget", lambda b: heap_flash - 1)
    rep = checker.check_file(path)
    assert _check_says(rep) == _compile_says(path, tmp_path) == (None, None, "memory")
    assert "loads on no firmware build" in rep.advice[0]


def test_check_and_compile_commands_print_the_same_layer_op_and_rule(tmp_path, capsys):
    path = tmp_path / "k5.tflite"
    path.write_bytes(checker.int8_tflite(CASES["kernel_5x5"][0]()))
    assert cli(["compile", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert cli(["check", str(path)]) == 1
    out = capsys.readouterr().out
    for text in ("layer 0 (CONV_2D)", "kernel 5x5", "[rule: kernel]"):
        assert text in err and text in out, (err, out)
    assert "Traceback" not in err + out


def test_an_alpha_1_mobilenet_needs_the_minimum_build_with_load_flash_and_the_board_agrees(tmp_path):
    """4.2 MB of weights: kpu.load fits no build, and kpu.load_flash's two 1 MiB layer buffers exceed the full
    build's heap. check and compile name the minimum build with load_flash; on the simulated board the full build
    answers ERR_NO_MEM to both loads and the minimum build streams it."""
    from host_tools.pipeline import arch
    from host_tools.sim import Board, Session
    m = arch.mobilenet_v1(224, 1.0, 1000)
    rep = checker.check_keras(m)
    assert rep.ok and (rep.memory.build, rep.memory.load) == ("minimum", "flash"), rep.text()
    assert rep.advice[0].startswith("needs the minimum firmware build, with kpu.load_flash")
    path = tmp_path / "mbn.tflite"
    path.write_bytes(checker.int8_tflite(m))
    man = compile_file(path, tmp_path, "mbn", "classifier", [str(i) for i in range(1000)])
    assert (man.load, man.fits, man.big_endian) == ("flash", {"full": False, "minimum": True}, "mbn_be.kmodel")
    for build, ok in (("full", False), ("minimum", True)):
        board = Board(flash_root=tmp_path / build, profile=build)
        board.write_flash(0x300000, (tmp_path / man.big_endian).read_bytes())
        board.write_flash(0x800000, (tmp_path / man.kmodel).read_bytes())
        s = Session(board)
        s.exec("import KPU as kpu, sensor, lcd\nlcd.init()\nsensor.reset()\nsensor.set_pixformat(sensor.RGB565)\n"
               "sensor.set_framesize(sensor.QVGA)")         # the camera's single-buffered QVGA frame, the LCD
        with pytest.raises(ValueError, match="load error:2006, ERR_NO_MEM"):
            s.exec("kpu.load(0x800000)")
        if ok:
            s.exec("t = kpu.load_flash(0x300000, 1, 0x4000, 80000000)")
            assert s.loaded_models() == 1
        else:
            with pytest.raises(ValueError, match="load_flash error:2006, ERR_NO_MEM"):
                s.exec("t = kpu.load_flash(0x300000, 1, 0x4000, 80000000)")


@pytest.mark.parametrize("where", ["lowering", "emission"])
def test_an_error_inside_the_compiler_is_the_layers_refusal_not_a_traceback(where, tmp_path, monkeypatch):
    from host_tools.compiler import emit, lower
    path = tmp_path / "sigmoid.tflite"
    path.write_bytes(checker.int8_tflite(CASES["sigmoid"][0]()))

    def broken(*a, **k):
        raise ZeroDivisionError("a bug")
    if where == "lowering":
        monkeypatch.setattr(lower._Lowering, "op_logistic", broken)
    else:
        monkeypatch.setattr(emit, "_cpu_body", broken)
    said = _compile_says(path, tmp_path)
    assert said == (1, "LOGISTIC", "compiler")      # emitted: the sigmoid's DEQUANTIZE and LOGISTIC CPU layers
    rep = checker.check_file(path)
    assert _check_says(rep) == said and "ZeroDivisionError: a bug" in rep.findings[0].message
