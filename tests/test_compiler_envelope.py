"""Compiled kmodels stay inside the arithmetic envelope of vendor-made kmodels (k210.envelope): the MobileNetV1 and
YOLOv2 architectures the pipeline trains; a layer no table can hold is refused with its layer and field; `kmodel
info` reports any file's conformity, the vendor fixtures' included."""
import os

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from host_tools.compiler import CompileError, compile_tflite, ir  # noqa: E402
from host_tools.k210 import registers as R  # noqa: E402
from host_tools.kmodel import load, netinfo, parse  # noqa: E402
from host_tools.kmodel.netinfo import format_netinfo  # noqa: E402
from tests.conftest import ROOT, fixture_file  # noqa: E402


def _tflite(tmp_path, name, model, size):
    from host_tools.pipeline.quantize import to_int8_tflite
    rng = np.random.default_rng(0)
    path = tmp_path / (name + ".tflite")
    path.write_bytes(to_int8_tflite(model, rng.random((4,) + size + (3,), dtype=np.float32)))
    return path


def _inside(km):
    info = netinfo(km)
    assert info.envelope == {}, format_netinfo(info)
    return info.widths


HEAVY = pytest.mark.heavy       # TensorFlow conversions of ~10 s each: the extremes run in make test


@pytest.mark.slow
@pytest.mark.parametrize("alpha, size", [(0.25, 128), (1.0, 224),
                                         pytest.param(0.5, 128, marks=HEAVY), pytest.param(0.75, 128, marks=HEAVY),
                                         pytest.param(1.0, 128, marks=HEAVY), pytest.param(0.25, 224, marks=HEAVY),
                                         pytest.param(0.5, 224, marks=HEAVY), pytest.param(0.75, 224, marks=HEAVY)])
def test_mobilenet_v1_compiles_inside_the_envelope(tmp_path, alpha, size):
    import keras
    from host_tools.pipeline.arch import mobilenet_v1
    keras.utils.set_random_seed(0)
    c = compile_tflite(_tflite(tmp_path, "mobilenet", mobilenet_v1(size, alpha, classes=1000), (size, size)))
    widths = _inside(c.kmodel)
    assert widths["accumulator"] >= 22 and widths["bn"] >= 26          # the layers use the room they have


@pytest.mark.slow
@pytest.mark.parametrize("backbone, alpha", [("small", 0.25), ("mobilenet", 0.25),
                                             pytest.param("mobilenet", 0.5, marks=HEAVY)])
def test_yolo_v2_compiles_inside_the_envelope(tmp_path, backbone, alpha):
    import keras
    from host_tools.pipeline.arch import yolo_v2
    keras.utils.set_random_seed(0)
    model = yolo_v2([1, 1, 2, 2, 3, 3, 4, 4, 5, 5], 2, (240, 320), backbone=backbone, alpha=alpha)
    _inside(compile_tflite(_tflite(tmp_path, "yolo", model, (240, 320))).kmodel)


@pytest.mark.parametrize("name", ["digits", "faces"])
def test_demo_kmodels_are_inside(name):
    _inside(load(ROOT / "models" / (name + ".kmodel")))


@pytest.mark.parametrize("name", ["nncase-yolo20/yolo.kmodel", "emc-cifar10/cifar10_output.kmodel",
                                  "maixpy-mnist/mnist.kmodel", "nncase-iris/iris.kmodel"])
def test_vendor_fixtures_are_reported_inside(name, capsys):
    from host_tools.__main__ import main
    path = fixture_file(*name.split("/"))
    assert main(["kmodel", "info", str(path)]) == 0
    out = capsys.readouterr().out
    if "iris" in name:              # no conv layer: nothing to measure
        assert "envelope" not in out
    else:
        assert "arithmetic envelope of vendor-made kmodels (k210/envelope.py): inside" in out


def test_kmodel_info_names_the_layer_and_field_outside(tmp_path, capsys):
    """A file with one BN multiplier past the vendor files' (as our compiler wrote them before): reported with
    its layer and field."""
    from host_tools.__main__ import main
    src = fixture_file("maixpy-mnist", "mnist.kmodel")
    data = bytearray(src.read_bytes())
    L = parse(bytes(data)).layers[1]
    at = L.fields["bn_offset"]
    e = R.decode_bn(data[at:at + 8], 1)[0]
    e.norm_mul = 8_000_000
    data[at:at + 8] = R.encode_bn([e])
    bad = tmp_path / "bad.kmodel"
    bad.write_bytes(bytes(data))
    assert main(["kmodel", "info", str(bad)]) == 0
    out = capsys.readouterr().out
    assert "OUTSIDE at 1 conv layers" in out
    assert "layer 1: norm_mul 8000000 (vendor envelope 0..2782024)" in out


def test_a_conv_whose_accumulator_no_vendor_file_reaches_is_refused_at_its_layer():
    """A 3x3 conv over 512 channels of full-range weights: its accumulator needs more bits than any vendor file's,
    which no choice of BN or activation changes: the compile check refuses it at that layer, naming the field."""
    from host_tools.compiler.build import check_envelope
    from tests.test_compiler_arith import one_layer_kmodel
    rng = np.random.default_rng(0)
    weights = rng.integers(0, 256, (8, 512, 3, 3)).astype(np.uint8)
    inp = ir.Value("x", (512, 8, 8), "u8", 1.0, 0, in_kpu=True)
    L = ir.ConvLayer(7, "CONV_2D", inp, ir.Value("y", (8, 8, 8), "u8", 1.0, 0, in_kpu=True), weights, 3, False, 0, 0,
                     128, np.full(8, 1e-4), np.zeros(8, np.int64))
    km = one_layer_kmodel(L)
    with pytest.raises(CompileError) as e:
        check_envelope(km, ir.Program("wide.tflite", inp, [L], [L.out]))
    assert (e.value.op_index, e.value.op, e.value.rule) == (7, "CONV_2D", "envelope")
    assert "accumulator 2" in str(e.value) and "(vendor envelope <= 25 bits)" in str(e.value)
