"""The real device/ app on the virtual Maix Bit: boot, mode switches by the BOOT key, and every failure the
issue names (2006, missing file, bad manifest, wrong input size) shown while the other mode keeps running."""
import dataclasses
import json
import shutil

import pytest

from conftest import FIXTURES, ROOT, fixture_file
from host_tools import manifest as mf
from host_tools.sim import Board, Session
from host_tools.k210.firmware import MIB, model_budget
from host_tools.sim.provision import fixture_manifests, install_app, install_models

DEVICE = ROOT / "device"
ERR_2006 = "[MAIXPY]kpu: load error:2006, ERR_NO_MEM: memory not enough"
START = 1300   # board ms when the app runs: _boot.py's 200 ms, boot.py's 1 s safe-mode window, bring-up


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
    board.press(at_ms=START + 1200)
    s, r, app = boot(board, START + 2500)
    assert r.stopped == "%d ms" % (START + 2500) and r.error is None
    assert loads(board) == ["mnist", "yolo20"]
    assert held(app) == "yolo20" and s.loaded_models() == 1
    # the detector's boxes on the dog photo, decoded by the firmware's run_yolo2: the board shows these three
    assert sorted(b[0] for b in app.result) == ["bicycle", "car", "dog"]
    assert board.screen.shown > 20
    assert "display: " not in board.console_text()      # every frame was drawn (labels, FPS) without error
    # the FPS shown is the rate frames reach the LCD
    rate = displays_after(board, START + 2000) / 0.5
    assert rate > 5 and abs(app.fps - rate) < 0.2 * rate, (app.fps, rate)


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
    board.press(at_ms=START + 1000, hold_ms=150, bounce=5, bounce_ms=6)   # 6 falling edges on press, 5 on release
    board.press(at_ms=START + 3000, hold_ms=900, bounce=5, bounce_ms=6)   # a long hold: release bounce long after
    s.rt.stop_check = lambda: "stop" if board.clock.ms >= START + 4500 else None
    s.boot()
    app = s.device_modules["app"].current
    # initial classifier; press 1 -> detector; the press inside that load -> classifier; long hold -> detector
    assert loads(board) == ["mnist", "yolo20", "mnist", "yolo20"]
    assert during, "no press landed inside a model load"
    assert held(app) == "yolo20" and s.loaded_models() == 1


def test_every_press_counts_once_whatever_its_hold_and_bounce(tmp_path, models):
    board = make_board(tmp_path, models)
    # (hold ms, extra flips per transition): taps shorter than a frame, long holds, clean and very bouncy contacts
    script = [(30, 0), (60, 8), (120, 3), (400, 5), (900, 2), (45, 6), (200, 0), (150, 7)]
    t = START + 800
    for hold, bounce in script:
        board.press(at_ms=t, hold_ms=hold, bounce=bounce, bounce_ms=2 + bounce)
        t += hold + 700      # time for the release, the load and a few frames before the next press
    s, r, app = boot(board, t)
    assert loads(board) == ["mnist", "yolo20"] * 4 + ["mnist"]
    assert held(app) == "mnist" and r.error is None


def write_models_json(board, edit):
    path = board.flash_root / "models.json"
    doc = json.loads(path.read_text())
    edit(doc["models"])
    path.write_text(json.dumps(doc))


def test_model_too_big_for_the_heap_gives_2006_and_the_app_falls_back(tmp_path, models):
    # 1 MiB of system heap left for models: mnist (423 KB) fits, the 20-class YOLO (1.4 MB) does not
    board = make_board(tmp_path, models, sys_heap_for_models=1 * MIB)
    board.press(at_ms=START + 1000)
    s, r, app = boot(board, START + 2500)
    assert r.error is None
    assert loads(board) == ["mnist", "yolo20"]
    assert "yolo20: " + ERR_2006 in board.console_text()
    assert app.notice is not None and ERR_2006 in app.notice[0]   # drawn over every frame for a while
    # the classifier that worked is back and running
    assert held(app) == "mnist" and app.slots[app.mode].kind == "classifier"
    assert s.loaded_models() == 1 and len(kmodel_blocks(s)) == 1
    assert displays_after(board, START + 1500) > 10 and isinstance(app.result, tuple)


def test_a_model_that_fits_only_beside_a_single_buffered_camera_gets_it(tmp_path, models):
    from host_tools.k210.memory import camera_buffers
    # room for the 1.4 MB detector with one frame buffer set, not with two (the classifier fits either way)
    board = make_board(tmp_path, models, sys_heap_for_models=1_500_000)
    board.press(at_ms=START + 500)
    s, r, app = boot(board, START + 1500)
    camera = s.device_modules["camera"]
    assert held(app) == "yolo20" and not camera.dual and r.error is None
    assert "camera: single-buffered to make room for yolo20" in board.console_text()
    assert [n for tag, n in s.rt.sys.blocks.values() if tag == "camera"] == [camera_buffers(320, 240, False)]
    assert sorted(b[0] for b in app.result) == ["bicycle", "car", "dog"]


def test_the_camera_is_double_buffered_when_the_models_leave_room(tmp_path, models):
    from host_tools.k210.memory import camera_buffers
    board = make_board(tmp_path, models)
    board.press(at_ms=START + 500)
    s, r, app = boot(board, START + 1500)
    assert held(app) == "yolo20" and s.device_modules["camera"].dual
    assert [n for tag, n in s.rt.sys.blocks.values() if tag == "camera"] == [camera_buffers(320, 240, True)]


def test_missing_model_file_shows_the_error_and_the_classifier_keeps_running(tmp_path, models):
    board = make_board(tmp_path, models, sd=True)
    (board.sd_root / "yolo20.kmodel").unlink()
    board.press(at_ms=START + 1000)
    board.press(at_ms=START + 2000)
    s, r, app = boot(board, START + 3000)
    assert r.error is None
    text = "yolo20: [MAIXPY]kpu: load error:2005, ERR_READ_FILE: read file failed"
    assert board.console_text().count(text) == 2          # each press tries again and tells again
    assert loads(board) == ["mnist", "yolo20", "yolo20"]
    assert held(app) == "mnist" and s.loaded_models() == 1
    assert app.frames > 30


def test_bad_manifest_entry_is_named_and_the_other_mode_keeps_running(tmp_path, models):
    board = make_board(tmp_path, models)
    write_models_json(board, lambda ms: ms[1].pop("anchors"))
    board.press(at_ms=START + 1000)
    s, r, app = boot(board, START + 2000)
    out = board.console_text()
    msg = "models.json models[1] (yolo20): field 'anchors' must hold an even, non-zero count of numbers"
    assert out.count(msg) == 2                             # at start, and again on the press
    assert loads(board) == ["mnist"]                       # the bad entry is never loaded
    assert held(app) == "mnist" and app.frames > 20 and r.error is None


def test_unusable_models_json_shows_a_message_and_the_app_still_runs(tmp_path, models):
    board = make_board(tmp_path, models)
    (board.flash_root / "models.json").write_text("{\"schema\": 1, \"models\": [")
    board.press(at_ms=START + 800)
    s, r, app = boot(board, START + 1500)
    assert r.error is None and r.stopped == "%d ms" % (START + 1500)
    assert board.console_text().count("models.json: not valid JSON") == 2
    assert held(app) is None and s.loaded_models() == 0
    assert app.frames > 20                                 # camera frames with the message keep coming


def test_wrong_input_size_raises_the_check_error_and_the_detector_takes_over(tmp_path, models):
    board = make_board(tmp_path, models)
    write_models_json(board, lambda ms: ms[0]["input"].update(w=32, h=32))   # mnist really takes 28x28
    s, r, app = boot(board, START + 1500)
    assert "mnist: [MAIXPY]kpu: check img format err!" in board.console_text()
    assert loads(board) == ["mnist", "yolo20"]
    assert held(app) == "yolo20" and sorted(b[0] for b in app.result) == ["bicycle", "car", "dog"]
    assert s.loaded_models() == 1 and r.error is None


def test_a_model_not_at_its_flash_offset_is_named_and_never_loaded(tmp_path, models):
    # what an interrupted deploy (or another tool) can leave: other bytes where models.json puts the detector
    board = make_board(tmp_path, models)
    doc = json.loads((board.flash_root / "models.json").read_text())
    det = doc["models"][1]["source"]
    assert len(det["head"]) == 2 * mf.HEAD_BYTES and det["size"] > 0
    board.write_flash(det["flash"], bytes(64))
    board.press(at_ms=START + 1000)
    s, r, app = boot(board, START + 2000)
    msg = "model yolo20 not at 0x%X (deploy interrupted?)" % det["flash"]
    assert board.console_text().count(msg) == 2            # at start, and again on the press
    assert "check img format" not in board.console_text() and "load error" not in board.console_text()
    assert loads(board) == ["mnist"]                       # never handed to kpu.load
    assert held(app) == "mnist" and isinstance(app.result, tuple) and r.error is None


@pytest.mark.slow
def test_soak_1000_switches_returns_the_heap_and_never_holds_two_models(tmp_path, models):
    board = make_board(tmp_path, models)
    s = Session(board)
    others_held_at_load = []
    real_alloc = s.rt.sys.alloc

    def alloc(tag, n):   # every model load: how many models are held at that moment
        if tag.startswith("kmodel:"):
            others_held_at_load.append(len(kmodel_blocks(s)))
        return real_alloc(tag, n)
    s.rt.sys.alloc = alloc
    kpu = s.module("KPU")
    real_deinit = kpu.deinit
    deinits = []

    def deinit(task):
        deinits.append(len(kmodel_blocks(s)))
        return real_deinit(task)
    kpu.deinit = deinit
    s.exec((board.flash_root / "boot.py").read_text(), "boot.py")
    s.exec("import app, gc, time\na = app.App()\na.start()\na.frame()")
    a = s.main_globals["a"]

    def level():
        s.exec("gc.collect()\nfree = gc.mem_free()")
        return s.rt.sys.free(), s.main_globals["free"]
    start = {0: level()}
    for i in range(1000):
        s.exec("a.enter(1 - a.mode)")
        assert a.mode == (i + 1) % 2 and s.loaded_models() == 1
        if i % 10 < 2:
            s.exec("a.frame()")   # the model runs and draws: images come and go on the GC heap
        if i % 100 < 2:
            assert level() == start.setdefault(a.mode, level())
    assert held(a) == "mnist" and a.notice is None
    assert level() == start[0]
    assert len(others_held_at_load) == 1001 and max(others_held_at_load) == 0
    assert deinits == [1] * 1000          # each switch freed the old model with kpu.deinit, never left it to the GC
    # the soak went through the app's real frame path for both models
    assert isinstance(a.result, tuple) and board.screen.shown >= 200


def test_both_models_failing_on_frames_leaves_the_camera_running_without_reloading(tmp_path, models):
    board = make_board(tmp_path, models)
    def wrong_sizes(ms):
        ms[0]["input"].update(w=32, h=32)
        ms[1]["input"].update(w=224, h=224)
    write_models_json(board, wrong_sizes)
    board.press(at_ms=START + 1500)
    s, r, app = boot(board, START + 3000)
    out = board.console_text()
    # each failure is told; no ping-pong between two broken models: a press tries again, once
    assert out.count("check img format err!") == 3
    assert loads(board) == ["mnist", "yolo20", "mnist"]
    assert held(app) is None and s.loaded_models() == 0 and r.error is None
    assert displays_after(board, START + 2000) > 10


def test_boot_without_camera_never_raises_and_the_app_says_so(tmp_path, models):
    board = make_board(tmp_path, models)
    board.camera_present = False
    s = Session(board)

    def stop_check():
        if board.clock.ms >= START + 3000:
            board.camera_present = True     # plugged back in: the app's retry brings it up
        return "stop" if board.clock.ms >= START + 4500 else None
    s.rt.stop_check = stop_check
    r = s.boot()
    app = s.device_modules["app"].current
    out = board.console_text()
    assert r.error is None and r.stopped == "stop"
    assert "boot: camera: " in out
    assert out.count("camera: not found sensor") == 1   # told once, not every frame
    assert held(app) == "mnist"                          # the model stayed loaded, waiting for frames
    assert displays_after(board, 0) > 10 and displays_after(board, 0) == displays_after(board, START + 3000)
    assert isinstance(app.result, tuple)


@pytest.mark.parametrize("damage, told", [
    (lambda root: (root / "app.py").write_text("this is not python\n"), ["main.py: "]),
    (lambda root: (root / "startup.py").unlink(),          # e.g. a sync cut short
     ["boot.py: no module named 'startup'", "main.py: no module named 'startup'"]),
])
def test_a_broken_install_still_boots_to_a_free_repl(tmp_path, models, damage, told):
    board = make_board(tmp_path, models)
    damage(board.flash_root)
    s, r, app = boot(board, START + 2000)
    out = board.console_text()
    assert all(t in out for t in told), out
    assert r.error is None and r.stopped is None       # both scripts ended: the REPL is free for the file tools
    assert s.loaded_models() == 0


def test_ctrl_c_stops_the_app_and_frees_the_model(tmp_path, models):
    board = make_board(tmp_path, models)
    s = Session(board)

    def stop_check():
        if board.clock.ms >= START + 1000 and s.loaded_models():
            s.interrupt()
        return "stop" if board.clock.ms >= START + 3000 else None
    s.rt.stop_check = stop_check
    r = s.boot()
    assert isinstance(r.error, KeyboardInterrupt) and r.stopped is None   # main.py ended, back to the REPL
    assert s.loaded_models() == 0 and kmodel_blocks(s) == []
    assert s.device_modules["app"].current.frames > 10


def test_detector_marked_for_flash_runs_through_load_flash(tmp_path, models):
    from host_tools.k210.bigendian import to_big_endian
    from host_tools.kmodel import load as kload, netinfo
    m = mf.load(models[1])
    be = tmp_path / "yolo20_be.kmodel"
    be.write_bytes(to_big_endian(mf.kmodel_path(models[1], m).read_bytes()))
    shutil.copyfile(mf.kmodel_path(models[1], m), tmp_path / m.kmodel)
    m.load, m.big_endian = "flash", be.name
    flash_manifest = mf.save(tmp_path / "yolo20.json", m)
    board = make_board(tmp_path / "b", [models[0], flash_manifest])
    assert '"load": "flash"' in (board.flash_root / "models.json").read_text()
    board.press(at_ms=START + 1000)
    s, r, app = boot(board, START + 2000)
    assert held(app) == "yolo20" and sorted(b[0] for b in app.result) == ["bicycle", "car", "dog"]
    # load_flash keeps only main memory and streaming buffers on the heap, not the weights
    info = netinfo(kload(mf.kmodel_path(models[1], m)))
    assert kmodel_blocks(s) == [info.heap_flash] and info.heap_flash != info.heap
