"""`make sim`'s runner on the real device app: boots, switches mode once, writes PNGs, a GIF and a log."""
import pytest
from PIL import Image

from conftest import FIXTURES, ROOT, fixture_file
from host_tools.sim.provision import fixture_manifests
from host_tools.sim.runner import run_app


@pytest.mark.slow
def test_run_app_records_frames_and_one_mode_switch(tmp_path):
    fixture_file("maixpy-mnist", "mnist.kmodel")
    fixture_file("nncase-yolo20", "yolo.kmodel")
    manifests = fixture_manifests(FIXTURES, tmp_path / "models")
    dog = fixture_file("nncase-yolo20", "dog.bmp")
    res = run_app(out_dir=tmp_path / "sim", device_dir=ROOT / "device", manifests=manifests, seconds=3.0,
                  presses=[1500.0], camera=[dog])
    assert res.stopped == "3.0 s of board time"
    assert res.frames > 20
    gif = Image.open(res.gif)
    assert gif.n_frames > 10 and gif.size == (320, 240)
    assert len(res.pngs) > 10
    log = res.log.read_text()
    # the app loads the classifier first and the detector after the press
    assert 0 <= log.index("mnist") < log.index("yolo20")
    assert "frames displayed: %d" % res.frames in log
    # models went into the flash image at the deploy planner's offsets, as models.json says
    models_json = (res.board.flash_root / "models.json").read_text()
    assert '"flash": 3145728' in models_json
    assert res.board.flash[0x300000:0x300004] == b"\x03\x00\x00\x00"
