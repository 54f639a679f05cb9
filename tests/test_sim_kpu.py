"""The simulated KPU module against the firmware's documented behaviour, with real kmodel fixtures."""
import shutil
import struct

import numpy as np
import pytest

from conftest import fixture_file
from host_tools.sim import Board, Session

YOLO_ANCHORS = (1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52)


def board_with(tmp_path, files, profile="full", camera=None):
    sd = tmp_path / "sd"
    sd.mkdir()
    for name, src in files.items():
        shutil.copyfile(src, sd / name)
    return Board(flash_root=tmp_path / "flash", sd_root=sd, profile=profile, camera=camera)


def run(session, src):
    session.exec(src)
    return session.main_globals


def load_error(session, src):
    with pytest.raises(ValueError) as e:
        session.exec(src)
    return str(e.value)


def test_load_argument_rules(tmp_path):
    s = Session(board_with(tmp_path, {}))
    s.exec("import KPU as kpu")
    assert load_error(s, "kpu.load(0)") == "[MAIXPY]kpu: model_addr must > 0 "
    assert load_error(s, "kpu.load(-4096)") == "[MAIXPY]kpu: model_addr must > 0 "
    assert load_error(s, "kpu.load('/sd/model.bin')") == \
        "[MAIXPY]kpu: model format don't match, only supply .kmodel "
    with pytest.raises(TypeError, match=r"^\[MAIXPY\]kpu: only accept int or string$"):
        s.exec("kpu.load(3.0)")
    assert load_error(s, "kpu.load('/sd/missing.kmodel')") == \
        "[MAIXPY]kpu: load error:2005, ERR_READ_FILE: read file failed"
    # erased flash (0xFF) where a model should be: what a firmware update over a model looks like
    assert load_error(s, "kpu.load(0x300000)") == \
        "[MAIXPY]kpu: load error:2002, ERR_KMODEL_VERSION: only support kmodel V3/V4 now"


def test_version_errors_follow_the_firmware_build(tmp_path):
    v5 = tmp_path / "v5.kmodel"
    v5.write_bytes(b"LDMK" + struct.pack("<I", 5) + bytes(64))
    v4 = tmp_path / "v4.kmodel"
    v4.write_bytes(b"LDMK" + struct.pack("<I", 4) + bytes(64))
    s = Session(board_with(tmp_path, {"v5.kmodel": v5, "v4.kmodel": v4}, profile="minimum"))
    s.exec("import KPU as kpu")
    assert load_error(s, "kpu.load('/sd/v5.kmodel')") == "[MAIXPY]kpu: load error:2015, ERR_UNKNOWN"
    assert load_error(s, "kpu.load('/sd/v4.kmodel')") == \
        "[MAIXPY]kpu: load error:2002, ERR_KMODEL_VERSION: only support kmodel V3"
    # the full build reads V4: this one has no nodes, a format error
    full = Session(Board(flash_root=tmp_path / "f2", sd_root=tmp_path / "sd", profile="full"))
    full.exec("import KPU as kpu")
    assert load_error(full, "kpu.load('/sd/v4.kmodel')") == \
        "[MAIXPY]kpu: load error:2003, ERR_KMODEL_FORMAT: layer_header.body_size <=0"


def test_float_model_forward_gives_a_tuple_and_the_fixture_values(tmp_path):
    s = Session(board_with(tmp_path, {"iris.kmodel": fixture_file("nncase-iris", "iris.kmodel")}))
    g = run(s, """
import KPU as kpu
task = kpu.load('/sd/iris.kmodel')
fm = kpu.forward(task, [5.1, 3.8, 1.9, 0.4])
out = fm[:]
first = fm[0]
shape = (fm.w(), fm.h(), fm.ch(), fm.typecode(), fm.size())
""")
    assert type(g["out"]) is tuple
    assert g["out"] == pytest.approx((16.077795, 5.607656, -2.071745), abs=1e-4)
    assert g["first"] == g["out"][0]
    # a non-conv last layer: h = ch = 1 and w = the byte count (the firmware's typecode-size helper answers 1)
    assert g["shape"] == (12, 1, 1, "f", 12)
    with pytest.raises(OSError, match="only slices with step=1"):
        s.exec("fm[::2]")
    with pytest.raises(TypeError):
        s.exec("list(fm)")          # no iterator on the board, only fm[:] and fm[i]


def test_input_check_rejects_wrong_size_and_missing_ai_buffer(tmp_path):
    b = board_with(tmp_path, {"mnist.kmodel": fixture_file("maixpy-mnist", "mnist.kmodel")})
    s = Session(b)
    s.exec("""
import KPU as kpu, sensor, image
sensor.reset(); sensor.set_pixformat(sensor.GRAYSCALE); sensor.set_framesize(sensor.QVGA)
task = kpu.load('/sd/mnist.kmodel')
img = sensor.snapshot()
""")
    assert load_error(s, "kpu.forward(task, img)") == "[MAIXPY]kpu: check img format err!\r\n"
    assert "[MAIXPY]kpu: img w=320,h=240, but model w=28,h=28" in b.console_text()
    assert load_error(s, "kpu.forward(task, img.resize(28, 28))") == "[MAIXPY]kpu: check img format err!\r\n"
    assert "[MAIXPY]kpu: pix_ai is NULL!" in b.console_text()
    s.exec("small = img.resize(28, 28); small.pix_to_ai(); fm = kpu.forward(task, small); out = fm[:]")
    assert len(s.main_globals["out"]) == 10 and type(s.main_globals["out"]) is tuple
    # an RGB frame for a 1-channel model: same check error
    s.exec("sensor.set_pixformat(sensor.RGB565); rgb = sensor.snapshot().resize(28, 28); rgb.pix_to_ai()")
    assert load_error(s, "kpu.forward(task, rgb)") == "[MAIXPY]kpu: check img format err!\r\n"
    assert "RGB img, but model channel=1" in b.console_text()


def test_run_yolo2_boxes_and_none_when_nothing_found(tmp_path):
    dog = fixture_file("nncase-yolo20", "dog.bmp")
    grey = np.full((240, 320, 3), 128, np.uint8)
    b = board_with(tmp_path, {"yolo.kmodel": fixture_file("nncase-yolo20", "yolo.kmodel")},
                   camera=[dog, ("grey", grey)])
    b.camera.hold_ms = 1000
    s = Session(b)
    s.exec("""
import KPU as kpu, sensor, time
sensor.reset(); sensor.set_pixformat(sensor.RGB565); sensor.set_framesize(sensor.QVGA)
task = kpu.load('/sd/yolo.kmodel')
ok = kpu.init_yolo2(task, 0.5, 0.2, 5, %r)
objs = kpu.run_yolo2(task, sensor.snapshot())
found = sorted((o.classid(), o.rect()) for o in objs)
time.sleep_ms(1000)
nothing = kpu.run_yolo2(task, sensor.snapshot())
""" % (YOLO_ANCHORS,))
    g = s.main_globals
    assert g["ok"] is True
    assert [c for c, _ in g["found"]] == [1, 6, 11]          # bicycle, car, dog as on the board's LCD photo
    assert all(type(v) is int for _, r in g["found"] for v in r)
    assert g["nothing"] is None
    with pytest.raises(ValueError, match="threshold only support 0 to 1"):
        s.exec("kpu.init_yolo2(task, 1.5, 0.2, 5, %r)" % (YOLO_ANCHORS,))


def test_at_most_five_models(tmp_path):
    s = Session(board_with(tmp_path, {"iris.kmodel": fixture_file("nncase-iris", "iris.kmodel")}))
    s.exec("import KPU as kpu\nnets = [kpu.load('/sd/iris.kmodel') for i in range(5)]")
    assert s.loaded_models() == 5
    assert load_error(s, "kpu.load('/sd/iris.kmodel')") == \
        "[MAIXPY]kpu: load error:2009, ERR_MODELS_FULL: we only support load 5 models in the same time"
    s.exec("kpu.deinit(nets.pop())\nnets.append(kpu.load('/sd/iris.kmodel'))")
    assert s.loaded_models() == 5


@pytest.mark.parametrize("profile, second_fits", [("full", False), ("minimum", True)])
def test_system_heap_budget_per_firmware_build(tmp_path, profile, second_fits):
    s = Session(board_with(tmp_path, {"yolo.kmodel": fixture_file("nncase-yolo20", "yolo.kmodel")}, profile))
    s.exec("import KPU as kpu, sensor, lcd\nlcd.init(); sensor.reset()\na = kpu.load('/sd/yolo.kmodel')")
    if second_fits:
        s.exec("b = kpu.load('/sd/yolo.kmodel')")
        assert s.loaded_models() == 2
    else:
        assert load_error(s, "b = kpu.load('/sd/yolo.kmodel')") == \
            "[MAIXPY]kpu: load error:2006, ERR_NO_MEM: memory not enough"
        assert s.loaded_models() == 1


def test_dropped_model_is_freed_only_by_the_garbage_collector(tmp_path):
    b = board_with(tmp_path, {"mnist.kmodel": fixture_file("maixpy-mnist", "mnist.kmodel")})
    s = Session(b)
    s.exec("import KPU as kpu, gc\nfrom Maix import utils\nfree0 = utils.heap_free()\n"
           "t = kpu.load('/sd/mnist.kmodel')\nt = None")
    assert s.loaded_models() == 1          # MicroPython frees it at the next collection, not at the last reference
    s.exec("gc.collect()\nfree1 = utils.heap_free()")
    assert s.loaded_models() == 0
    assert s.main_globals["free1"] == s.main_globals["free0"]
    assert "kpu_net __del__" in b.console_text()


def test_load_from_flash_offset(tmp_path):
    b = board_with(tmp_path, {})
    b.write_flash(0x500000, fixture_file("maixpy-mnist", "mnist.kmodel").read_bytes())
    s = Session(b)
    s.exec("import KPU as kpu\nt = kpu.load(0x500000)\naddr = t.model_addr(); size = t.model_size()")
    assert s.main_globals["addr"] == 0x500000
    assert s.main_globals["size"] == fixture_file("maixpy-mnist", "mnist.kmodel").stat().st_size


def test_load_flash_reads_the_big_endian_copy(tmp_path):
    from host_tools.k210.bigendian import to_big_endian
    raw = fixture_file("nncase-iris", "iris.kmodel").read_bytes()
    b = board_with(tmp_path, {})
    b.write_flash(0x600000, to_big_endian(raw))
    b.write_flash(0x700000, raw)
    s = Session(b)
    s.exec("import KPU as kpu\nt = kpu.load_flash(0x600000, 1, 0x4000, 80000000)\n"
           "out = kpu.forward(t, [5.1, 3.8, 1.9, 0.4])[:]\nref = kpu.forward(kpu.load(0x700000), [5.1, 3.8, 1.9, 0.4])[:]")
    assert s.main_globals["out"] == s.main_globals["ref"]
    assert load_error(s, "kpu.load_flash(0x600000, 1, 0x4000, 8e7)").startswith(
        "[MAIXPY]kpu: load_flash arg format error")
    # the little-endian file where load_flash expects big-endian: the version word reads wrong
    assert load_error(s, "kpu.load_flash(0x700000, 1, 0x4000, 80000000)") == \
        "[MAIXPY]kpu: load_flash error:2002, ERR_KMODEL_VERSION: only support kmodel V3/V4 now"


def test_fmap_of_a_run_that_ends_on_a_kpu_conv_is_raw_bytes(tmp_path):
    from host_tools.kmodel import load
    from host_tools.kmodel.reader import K210_CONV
    path = fixture_file("maixpy-mnist", "mnist.kmodel")
    km = load(path)
    last_conv = max(i for i, L in enumerate(km.layers) if L.type == K210_CONV)
    assert last_conv < len(km.layers) - 1        # the whole model ends on a CPU layer: typecode 'f'
    s = Session(board_with(tmp_path, {"mnist.kmodel": path}))
    g = run(s, """
import KPU as kpu, image
task = kpu.load('/sd/mnist.kmodel')
img = image.Image(size=(28, 28)).to_grayscale()
img.pix_to_ai()
whole = kpu.forward(task, img).typecode()
kpu.set_layers(task, %d)
fm = kpu.forward(task, img)
shape = (fm.ch(), fm.h(), fm.w(), fm.typecode())
out = fm[:]
""" % (last_conv + 1))
    assert g["whole"] == "f"
    assert g["shape"] == tuple(km.layers[last_conv].regs.out_shape) + ("B",)
    assert all(type(v) is int and 0 <= v <= 255 for v in g["out"])
