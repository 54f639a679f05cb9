"""The K210 cost model (host_tools/k210/cost.py) against the published Maix Bit figures (cost.PUBLISHED): every
prediction inside the published range or within 15 % of its middle; `kmodel info` prints the predictions."""
import json
import subprocess
import sys

import pytest

from host_tools.k210 import cost
from host_tools.kmodel import load
from host_tools.kmodel.board_time import figure_ms, predict
from tests.conftest import ROOT, fixture_file

FORWARD = [f for f in cost.PUBLISHED if f.quantity != "loop_fps"]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    from host_tools.pipeline.calibration_models import build
    d = tmp_path_factory.mktemp("calibration")
    return {name: build(name, d) for name in {f.model for f in FORWARD}}


@pytest.mark.parametrize("fig", FORWARD, ids=lambda f: "%s-%s" % (f.model, f.quantity))
def test_forward_figures(built, fig):
    got = figure_ms(built[fig.model], fig)
    assert fig.holds(got), "%s %s: predicted %.1f ms, published %g-%g ms (%s)" % (
        fig.model, fig.quantity, got, fig.low, fig.high, fig.source)


def test_calibration_models_are_the_vendor_files_size(built):
    # the vendor files: MobileNetV1 0.75 (MaixPy issue 469's layer bodies), detect.kmodel 388776 bytes
    m = built["mobilenet_0.75_224"]
    assert [L.body_size for L in m.layers[:5]] == [1364, 1024, 2048, 1280, 5888]
    assert built["face_yolov2_320x240"].size == 388776


def test_yolo20_demo_loop_fps():
    from host_tools.pipeline.calibration_models import YOLO20_ANCHORS
    from host_tools.sim.demo_loop import yolo_loop_fps
    fig, = [f for f in cost.PUBLISHED if f.quantity == "loop_fps"]
    fps = yolo_loop_fps(fixture_file("nncase-yolo20", "yolo.kmodel"), YOLO20_ANCHORS, seconds=2)
    assert fig.holds(fps), "whole loop %.1f fps, published %g (%s)" % (fps, fig.middle, fig.source)


def test_holds_is_the_published_rule():
    f = cost.Figure("m", "ram", 37, 40, "s")
    assert f.holds(37) and f.holds(44) and not f.holds(44.9) and not f.holds(32.5)


def test_load_flash_batches_are_the_librarys():
    # kpu_prepare_next_buf: whole layers until the batch size is reached, one fewer when that overflows a buffer
    bodies = [1000, 2000, 70000, 30000, 30000, 65000, 100]
    assert cost.load_flash_batches(bodies, 0xC000) == [(0, 2), (2, 3), (3, 5), (5, 6), (6, 7)]
    assert cost.load_flash_batches(bodies, 1) == [(k, k + 1) for k in range(7)]


def test_dual_buffer_overlaps_the_next_batch_only():
    # two layers, 10 KB each, batch = one layer: the second's read (~0.3 ms at 67 MHz) hides behind the first's run
    read = cost.flash_read_us(10000, 67_166_666)
    dual = cost.load_flash_forward_us([(1000.0, 10000), (1000.0, 10000)], True, 67_166_666, 1)
    assert dual == pytest.approx(read + 2000.0)
    # a run shorter than the next read waits for it
    dual = cost.load_flash_forward_us([(100.0, 10000), (100.0, 10000)], True, 67_166_666, 1)
    assert dual == pytest.approx(2 * read + 100.0)


def test_dual_buffer_never_slower_than_single():
    layers = [(100.0, 4000), (5.0, 300000), (2000.0, 100)]
    for spi in (20_000_000, 80_000_000):
        assert cost.load_flash_forward_us(layers, True, spi) <= cost.load_flash_forward_us(layers, False, spi)


def _info(*args):
    return subprocess.run([sys.executable, "-m", "host_tools", "kmodel", "info", *args], cwd=ROOT,
                          capture_output=True, text=True)


def test_kmodel_info_json_predictions():
    path = fixture_file("nncase-yolo20", "yolo.kmodel")
    r = _info(str(path), "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    want = predict(load(path)).as_dict()
    assert d["predicted_ms"] == want and set(want) == {"ram", "load_flash_dual", "load_flash_single", "load"}
    assert d["name"] and len(d["predicted_layer_ms"]) == len(d["layers"])
    assert want["load_flash_single"] > want["load_flash_dual"] > want["ram"] > 5


def test_kmodel_info_prints_predictions():
    r = _info(str(ROOT / "models" / "digits.kmodel"))
    assert r.returncode == 0, r.stderr
    line, = [ln for ln in r.stdout.splitlines() if ln.startswith("predicted Maix Bit time")]
    assert "ms from RAM" in line and "dual-buffered" in line and "kpu.load" in line


def test_conv_structure_against_topic_691():
    ratios = [cost.topic_691_ms(w, h) / ms for w, h, ms in cost.TOPIC_691]
    assert sum(abs(r - 1) <= 0.10 for r in ratios) >= 9 and all(abs(r - 1) <= 0.30 for r in ratios), ratios


def test_kmodel_info_spi_speed():
    path = str(ROOT / "models" / "faces.kmodel")
    slow, fast = (json.loads(_info(path, "--json", "--spi-speed", str(hz)).stdout)["predicted_ms"]
                  for hz in (20_000_000, 80_000_000))
    assert slow["ram"] == fast["ram"] and slow["load_flash_single"] > fast["load_flash_single"]
    r = _info(path, "--spi-speed", "0")
    assert r.returncode == 2 and r.stderr.startswith("error: --spi-speed 0")
