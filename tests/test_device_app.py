"""The real device/ app on the virtual Maix Bit: boot, mode switches by the BOOT key, and every failure the
issue names (2006, missing file, bad manifest, wrong input size) shown while the other mode keeps running."""
import dataclasses
import json
import shutil

import pytest

from conftest import FIXTURES, ROOT, fixture_file
from host_tools import manifest as mf
from host_tools.sim import Board, Session
from host_tools.sim.profiles import MIB, model_budget
from host_tools.sim.provision import fixture_manifests, install_app, install_models

DEVICE = ROOT / "device"
ERR_2006 = "[MAIXPY]kpu: load error:2006, ERR_NO_MEM: memory not enough"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Manifests for the mnist classifier and the 20-class YOLO detector fixtures (real kmodels)."""
    fixture_file("maixpy-mnist", "mnist.kmodel")
    fixture_file("nncase-yolo20", "yolo.kmodel")
    paths = fixture_manifests(FIXTURES, tmp_path_factory.mktemp("models"))
    assert [p.stem for p in paths] == ["mnist", "yolo20"]
    return paths


def make_board(tmp_path, manifests, sd=False, sys_heap_for_models=None):
    camera = [fixture_file("nncase-yolo20", "dog.bmp")]
    board = Board(flash_root=tmp_path / "flash", sd_root=(tmp_path / "sd") if sd else None, camera=camera,
                  keep_frames=400)
    if sys_heap_for_models is not None:
        # a firmware build that leaves less system heap once camera and LCD are up
        p = board.profile
        board.profile = dataclasses.replace(p, sys_heap=p.sys_heap - model_budget(p.name) + sys_heap_for_models)
    install_app(board, DEVICE)
    install_models(board, manifests)
    return board


def boot(board, ms):
    """Power up and run boot.py + main.py for ms of board time; returns (session, BootResult, app or None)."""
    s = Session(board)
    s.rt.stop_check = lambda: ("%d ms" % ms) if board.clock.ms >= ms else None
    r = s.boot()
    app_mod = s.device_modules.get("app")
    return s, r, (app_mod.current if app_mod is not None else None)


def loads(board):
    """Model names in the order the app started loading them (from its console)."""
    return [line.split()[1] for line in board.console_text().split("\r\n") if line.startswith("loading ")]


def kmodel_blocks(s):
    return [n for tag, n in s.rt.sys.blocks.values() if tag.startswith("kmodel:")]


def displays_after(board, ms):
    return sum(1 for t, _, note in board.screen.frames if t > ms and note == "display")


def held(app):
    return app.manager.entry["name"] if app.manager.entry is not None else None


def test_classifier_then_detector_after_one_press(tmp_path, models):
    board = make_board(tmp_path, models)
    board.press(at_ms=1200)
    s, r, app = boot(board, 2500)
    assert r.stopped == "2500 ms" and r.error is None
    assert loads(board) == ["mnist", "yolo20"]
    assert held(app) == "yolo20" and s.loaded_models() == 1
    # the detector's boxes on the dog photo, decoded by the firmware's run_yolo2: the board shows these three
    assert sorted(app.result) == ["bicycle", "car", "dog"]
    assert board.screen.shown > 20


def test_bouncing_presses_switch_once(tmp_path, models):
    board = make_board(tmp_path, models)
    s = Session(board)
    kpu = s.module("KPU")
    real_load = kpu.load
    during = []

    def load_and_press(x, *a):
        # a whole press (bounce on press and on release) while the detector loads
        if not during and loads(board) == ["mnist", "yolo20"]:
            during.append(board.clock.ms)
            board.press(at_ms=board.clock.ms + 30, hold_ms=100, bounce=5, bounce_ms=6)
        return real_load(x, *a)
    kpu.load = load_and_press
    board.press(at_ms=1000, hold_ms=150, bounce=5, bounce_ms=6)   # 6 falling edges on press, 5 on release
    board.press(at_ms=3000, hold_ms=900, bounce=5, bounce_ms=6)   # a long hold: release bounce long after
    s.rt.stop_check = lambda: "stop" if board.clock.ms >= 4500 else None
    s.boot()
    app = s.device_modules["app"].current
    # initial classifier; press 1 -> detector; the press inside that load -> classifier; long hold -> detector
    assert loads(board) == ["mnist", "yolo20", "mnist", "yolo20"]
    assert during, "no press landed inside a model load"
    assert held(app) == "yolo20" and s.loaded_models() == 1


def write_models_json(board, edit):
    path = board.flash_root / "models.json"
    doc = json.loads(path.read_text())
    edit(doc["models"])
    path.write_text(json.dumps(doc))


def test_model_too_big_for_the_heap_gives_2006_and_the_app_falls_back(tmp_path, models):
    # 1 MiB of system heap left for models: mnist (423 KB) fits, the 20-class YOLO (1.4 MB) does not
    board = make_board(tmp_path, models, sys_heap_for_models=1 * MIB)
    board.press(at_ms=1000)
    s, r, app = boot(board, 2500)
    assert r.error is None
    assert loads(board) == ["mnist", "yolo20"]
    assert "yolo20: " + ERR_2006 in board.console_text()
    assert app.notice is not None and ERR_2006 in app.notice[0]   # drawn over every frame for a while
    # the classifier that worked is back and running
    assert held(app) == "mnist" and app.slots[app.mode].kind == "classifier"
    assert s.loaded_models() == 1 and len(kmodel_blocks(s)) == 1
    failed_at = app.notice[1] - 4000
    assert displays_after(board, failed_at) > 10 and isinstance(app.result, tuple)


def test_missing_model_file_shows_the_error_and_the_classifier_keeps_running(tmp_path, models):
    board = make_board(tmp_path, models, sd=True)
    (board.sd_root / "yolo20.kmodel").unlink()
    board.press(at_ms=1000)
    board.press(at_ms=2000)
    s, r, app = boot(board, 3000)
    assert r.error is None
    text = "yolo20: [MAIXPY]kpu: load error:2005, ERR_READ_FILE: read file failed"
    assert board.console_text().count(text) == 2          # each press tries again and tells again
    assert loads(board) == ["mnist", "yolo20", "yolo20"]
    assert held(app) == "mnist" and s.loaded_models() == 1
    assert app.frames > 30


def test_bad_manifest_entry_is_named_and_the_other_mode_keeps_running(tmp_path, models):
    board = make_board(tmp_path, models)
    write_models_json(board, lambda ms: ms[1].pop("anchors"))
    board.press(at_ms=1000)
    s, r, app = boot(board, 2000)
    out = board.console_text()
    msg = "models.json models[1] (yolo20): field 'anchors' must hold an even, non-zero count of numbers"
    assert out.count(msg) == 2                             # at start, and again on the press
    assert loads(board) == ["mnist"]                       # the bad entry is never loaded
    assert held(app) == "mnist" and app.frames > 20 and r.error is None


def test_unusable_models_json_shows_a_message_and_the_app_still_runs(tmp_path, models):
    board = make_board(tmp_path, models)
    (board.flash_root / "models.json").write_text("{\"schema\": 1, \"models\": [")
    board.press(at_ms=800)
    s, r, app = boot(board, 1500)
    assert r.error is None and r.stopped == "1500 ms"
    assert board.console_text().count("models.json: not valid JSON") == 2
    assert held(app) is None and s.loaded_models() == 0
    assert app.frames > 20                                 # camera frames with the message keep coming


def test_wrong_input_size_raises_the_check_error_and_the_detector_takes_over(tmp_path, models):
    board = make_board(tmp_path, models)
    write_models_json(board, lambda ms: ms[0]["input"].update(w=32, h=32))   # mnist really takes 28x28
    s, r, app = boot(board, 1500)
    assert "mnist: [MAIXPY]kpu: check img format err!" in board.console_text()
    assert loads(board) == ["mnist", "yolo20"]
    assert held(app) == "yolo20" and sorted(app.result) == ["bicycle", "car", "dog"]
    assert s.loaded_models() == 1 and r.error is None
