"""kmodel V4 (nncase v0.2): the reader and emulator on nncase's own V4 files, and the tools that take V4 like V3."""
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, fixture_file
from host_tools.kmodel import KmodelError, load, netinfo, parse, run
from host_tools.kmodel.reader_v4 import KPU_CONV2D, KmodelV4
from host_tools.kmodel.yolo import region_decode
from host_tools.sim.provision import VOC, YOLO20_ANCHORS


def dog():
    return np.fromfile(fixture_file("nncase-yolo20", "dog_rgb888_planar_320x240.bin"), np.uint8).reshape(3, 240, 320)


def boxes(path, threshold=0.5):
    out = run(load(path), dog())[0]
    return {VOC[b.classid]: (b.x, b.y, b.w, b.h, float(b.value))
            for b in region_decode(out, list(YOLO20_ANCHORS), threshold, 0.2, 320, 240)}


def test_iris_v4_gives_the_example_values():
    m = load(fixture_file("nncase-v4-iris", "iris.kmodel"))
    assert isinstance(m, KmodelV4) and m.input_is_float and m.input_shape == (4, 1, 1)
    assert [L.type_name for L in m.layers] == ["Transpose", "MatMul", "Transpose", "MatMul"]
    out = run(m, [5.1, 3.8, 1.9, 0.4])[0].reshape(-1)
    assert np.allclose(out, [16.077795, 5.607656, -2.071745], atol=1e-4)


def test_yolo20_v4_structure_and_output_shape():
    m = load(fixture_file("nncase-v4-yolo20", "yolo.kmodel"))
    assert m.input_shape == (3, 240, 320) and not m.input_is_float
    assert [L.type for L in m.layers] == [KPU_CONV2D] * 16 + [0x03]
    assert m.output_shapes == [(125, 7, 10)] and m.output_typecodes == ["f"]


def test_yolo20_v4_boxes_against_the_v3_file():
    """The V4 file (its own quantization) finds the bicycle and the car of the V3 file at threshold 0.5, the car
    within a few pixels; its dog scores 0.43 and shows from threshold 0.4 (docs/kmodel-v4.md)."""
    v4 = boxes(fixture_file("nncase-v4-yolo20", "yolo.kmodel"))
    v3 = boxes(fixture_file("nncase-yolo20", "yolo.kmodel"))
    assert sorted(v3) == ["bicycle", "car", "dog"]
    assert sorted(v4) == ["bicycle", "car"]
    assert max(abs(a - b) for a, b in zip(v4["car"][:4], v3["car"][:4])) <= 3
    low = boxes(fixture_file("nncase-v4-yolo20", "yolo.kmodel"), threshold=0.4)
    assert sorted(low) == ["bicycle", "car", "dog"] and 0.4 < low["dog"][4] < 0.5


def test_v4_activation_tables_read_as_nncase_v02_writes_them():
    """v0.2's quantize_act: entry 0 at -2^35, the clamped segments (leaky: a 0.1 slope ending at x 0, then the
    rising one) each get_fixed_mul(k / post_mul, 16, 20), so the leaky y_mul is 0.1 x the rising one rounded (6/64
    .. 102/1024, the slopes that move this file's boxes: docs/kmodel-v4.md), then dummies at 0x7FFFFFFF0 + i."""
    from host_tools.kmodel import kpu
    m = load(fixture_file("nncase-v4-yolo20", "yolo.kmodel"))
    ratios = []
    for L in m.layers[:15]:                    # the last conv is linear: one rising segment
        a = kpu.layer_arith(L)
        assert (a.x_start[0], a.y_mul[0], a.bias[0]) == (-2 ** 35, 0, 0)
        assert a.x_start[1] < 0 and a.x_start[2] == 0 and list(a.shift[1:3]) == [20, 20] and a.bias[1] == 0
        assert list(a.x_start[3:]) == [0x7FFFFFFF0 + i for i in range(2, 15)] and not a.y_mul[3:].any()
        assert abs(a.y_mul[1] - 0.1 * a.y_mul[2]) <= 0.5
        ratios.append(a.y_mul[1] / a.y_mul[2])
    assert min(ratios) == 6 / 64 and max(ratios) > 0.1015


def test_v4_kpu_arithmetic_is_the_v3_layers_own():
    """KPU conv nodes run the same integer stages as V3's K210_CONV: fast path and int64 reference agree."""
    m = load(fixture_file("nncase-v4-yolo20", "yolo.kmodel"))
    assert np.array_equal(run(m, dog(), upto=4)[0], run(m, dog(), upto=4, exact=True)[0])


def test_netinfo_memory_of_the_v4_fixtures():
    from host_tools.k210.firmware import V4_RUNTIME_EXTRA, loads
    y = netinfo(load(fixture_file("nncase-v4-yolo20", "yolo.kmodel")))
    assert y.version == 4 and y.main_mem == 43752 and y.file_size == 1352232
    assert y.heap == 1352232 + 43752 + V4_RUNTIME_EXTRA
    assert loads(y.memory, "full", "ram")
    i = netinfo(load(fixture_file("nncase-v4-iris", "iris.kmodel")))
    assert i.main_mem == 216 and i.weights >= 280 and i.heap == 720 + 216 + V4_RUNTIME_EXTRA


def test_board_time_prices_v4_kpu_nodes_as_v3_and_matmul_on_the_cpu():
    """The same conv-only network as V3 and V4 takes the same time (neucrack.com/p/313: a YOLOv2 in 50 ms as both);
    V4's MatMul runs in float on the CPU (Sipeed topic 1790), priced per multiply-add (k210.cost)."""
    from host_tools.k210 import cost
    from host_tools.kmodel.board_time import layer_us, predict
    v3 = predict(load(fixture_file("nncase-yolo20", "yolo.kmodel")))
    v4 = predict(load(fixture_file("nncase-v4-yolo20", "yolo.kmodel")))
    assert v4.ram == pytest.approx(v3.ram, rel=0.05) and v4.load == pytest.approx(v3.load, rel=0.01)
    iris = load(fixture_file("nncase-v4-iris", "iris.kmodel"))
    mm = [L for L in iris.layers if L.type_name == "MatMul"]
    assert [layer_us(L) for L in mm] == [cost.v4_matmul_us(4 * 10), cost.v4_matmul_us(10 * 3)]
    # MobileNetV1 0.75's classifier as a V4 MatMul: topic 1790's V4 - V3 difference
    assert cost.v4_matmul_us(768 * 1000) / 1e3 == pytest.approx(111 - 37, rel=0.01)


def test_kmodel_info_names_version_and_compiler():
    p = fixture_file("nncase-v4-yolo20", "yolo.kmodel")
    r = subprocess.run([sys.executable, "-m", "host_tools", "kmodel", "info", str(p)], capture_output=True,
                       text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert "kmodel V4 (nncase v0.2), 17 layers" in r.stdout and "KPUConv2D" in r.stdout
    assert "system heap for kpu.load (RAM): 1755984 B" in r.stdout


def test_malformed_v4_names_node_and_field():
    data = bytearray(fixture_file("nncase-v4-iris", "iris.kmodel").read_bytes())
    bad = bytearray(data)
    bad[400 + 8 * 0 - 8 * 4 + 0:400 - 8 * 4 + 4] = (0x7777).to_bytes(4, "little")    # node 0's opcode
    with pytest.raises(KmodelError) as e:
        parse(bytes(bad), "iris.kmodel")
    assert e.value.code == 2003 and e.value.layer == 0 and e.value.field == "opcode"
    with pytest.raises(KmodelError) as e:
        parse(bytes(data[:600]), "iris.kmodel")
    assert e.value.layer == 2 and e.value.field == "body_size"
    bad = bytearray(data)
    bad[40 + 8:40 + 12] = (1 << 20).to_bytes(4, "little")          # input 0's start, past main memory
    with pytest.raises(KmodelError) as e:
        parse(bytes(bad), "iris.kmodel")
    assert e.value.field == "inputs[0]" and e.value.layer is None
