"""kmodel V4 on the virtual Maix Bit: loads and runs on the full firmware, 2002 on the minimum build, output
shapes by kpu.set_outputs as the firmware wants them, and the device app's detector on the V4 yolo20."""
import pytest

from conftest import FIXTURES, fixture_file
from host_tools.k210.firmware import build
from host_tools.sim import Session
from host_tools.sim.provision import fixture_manifests
from test_device_app import START, boot, held, loads, make_board
from test_sim_kpu import board_with, load_error, run

V4_YOLO = ("nncase-v4-yolo20", "yolo.kmodel")
ERR_2002_MIN = "[MAIXPY]kpu: load error:2002, ERR_KMODEL_VERSION: only support kmodel V3"


@pytest.fixture(scope="module")
def v4_models(tmp_path_factory):
    fixture_file("maixpy-mnist", "mnist.kmodel")
    fixture_file(*V4_YOLO)
    paths = fixture_manifests(FIXTURES, tmp_path_factory.mktemp("models"), names=("mnist", "yolo20v4"))
    assert [p.stem for p in paths] == ["mnist", "yolo20v4"]
    return paths


def test_device_app_runs_the_v4_detector_on_the_dog_photo(tmp_path, v4_models):
    board = make_board(tmp_path, v4_models)
    board.press(at_ms=START + 1200)
    s, r, app = boot(board, START + 3000)
    assert r.error is None and loads(board) == ["mnist", "yolo20v4"]
    assert held(app) == "yolo20v4" and s.loaded_models() == 1
    # run_yolo2 through the simulated camera; this V4 file's own quantization finds these two at threshold 0.5
    assert sorted(b[0] for b in app.result) == ["bicycle", "car"]
    assert "yolo20v4:" not in board.console_text()          # no load or run error shown


def test_minimum_build_refuses_the_v4_detector_and_keeps_the_classifier(tmp_path, v4_models):
    board = make_board(tmp_path, v4_models)
    board.profile = build("minimum")
    board.press(at_ms=START + 1200)
    s, r, app = boot(board, START + 3000)
    assert r.error is None
    assert "yolo20v4: " + ERR_2002_MIN in board.console_text()
    assert held(app) == "mnist"                             # the model that worked is back


def test_v4_outputs_need_set_outputs(tmp_path):
    s = Session(board_with(tmp_path, {"y.kmodel": fixture_file(*V4_YOLO),
                                      "iris.kmodel": fixture_file("nncase-v4-iris", "iris.kmodel")}))
    g = run(s, "import KPU as kpu\nt = kpu.load('/sd/iris.kmodel')\nbad = kpu.set_outputs(t, 0, 1, 1, 4)\n"
               "badidx = kpu.set_outputs(t, 1, 1, 1, 3)\nok = kpu.set_outputs(t, 0, 1, 1, 3)\n"
               "fm = kpu.forward(t, [5.1, 3.8, 1.9, 0.4])\nv = fm[:]\nshape = (fm.w(), fm.h(), fm.ch(), fm.typecode())")
    assert (g["bad"], g["badidx"], g["ok"]) == (False, False, True)
    assert [round(x, 4) for x in g["v"]] == [16.0778, 5.6077, -2.0717] and g["shape"] == (1, 1, 3, "f")
    assert "w,c,ch size not match output size" in s.board.console_text()
    with pytest.raises(OSError, match="sipeed_kpu_get_outputs_shape err"):
        s.exec("t2 = kpu.load('/sd/iris.kmodel')\nkpu.forward(t2, [5.1, 3.8, 1.9, 0.4])")
    with pytest.raises(ValueError, match="region_layer_init err"):
        s.exec("import image\ny = kpu.load('/sd/y.kmodel')\nkpu.init_yolo2(y, 0.5, 0.2, 5, (1.08, 1.19, 3.42, 4.41, "
               "6.63, 11.38, 9.42, 5.11, 16.62, 10.52))\nimg = image.Image(size=(320, 240))\nimg.pix_to_ai()\n"
               "kpu.run_yolo2(y, img)")


def test_minimum_build_refuses_v4_files_and_flash_offsets(tmp_path):
    b = board_with(tmp_path, {"y.kmodel": fixture_file(*V4_YOLO)}, profile="minimum")
    b.write_flash(0x500000, fixture_file(*V4_YOLO).read_bytes())
    s = Session(b)
    s.exec("import KPU as kpu")
    assert load_error(s, "kpu.load('/sd/y.kmodel')") == ERR_2002_MIN
    assert load_error(s, "kpu.load(0x500000)") == ERR_2002_MIN


def test_v4_from_flash_and_big_endian_load_flash(tmp_path):
    from host_tools.k210.bigendian import to_big_endian
    raw = fixture_file("nncase-v4-iris", "iris.kmodel").read_bytes()
    b = board_with(tmp_path, {})
    b.write_flash(0x600000, to_big_endian(raw))
    b.write_flash(0x700000, raw)
    s = Session(b)
    g = run(s, "import KPU as kpu\nt = kpu.load_flash(0x600000, 1, 0x4000, 80000000)\nkpu.set_outputs(t, 0, 1, 1, 3)\n"
               "out = kpu.forward(t, [5.1, 3.8, 1.9, 0.4])[:]\nr = kpu.load(0x700000)\nkpu.set_outputs(r, 0, 1, 1, 3)\n"
               "ref = kpu.forward(r, [5.1, 3.8, 1.9, 0.4])[:]\nsize = r.model_size()")
    assert g["out"] == g["ref"] and g["size"] == len(raw)
