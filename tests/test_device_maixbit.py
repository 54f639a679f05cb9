"""What a real Maix Bit does to the app and the simulator now models (issue 17): a GPIO handler the GC frees, the
OV2640's top-left set_windowing, the ROM's ISP mode, the SD card's scripts, a fragmenting GC heap and
lcd.draw_string's leak. Each of these failed against the app before its fixes."""
import numpy as np
import pytest

from conftest import FIXTURES, ROOT, fixture_file
from host_tools import framing
from host_tools.k210.memory import XALLOC_FAILED
from host_tools.sim import Board, Session
from host_tools.sim.camera import photo
from host_tools.sim.provision import fixture_manifests, install_app, install_models

DEVICE = ROOT / "device"
START = 1300   # board ms when the app runs: _boot.py's 200 ms, boot.py's 1 s safe-mode window, bring-up


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """The mnist classifier (28x28 gray, centre crop) and 20-class YOLO detector (320x240) fixtures."""
    fixture_file("maixpy-mnist", "mnist.kmodel")
    fixture_file("nncase-yolo20", "yolo.kmodel")
    return fixture_manifests(FIXTURES, tmp_path_factory.mktemp("models"))


def make_board(tmp_path, manifests, camera, sd=False, **kw):
    board = Board(flash_root=tmp_path / "flash", sd_root=(tmp_path / "sd") if sd else None, camera=camera, **kw)
    install_app(board, DEVICE)
    install_models(board, manifests)
    return board


def run(board, until_ms, session=None):
    s = session or Session(board)
    s.rt.stop_check = lambda: "stop" if board.clock.ms >= until_ms else None
    r = s.boot()
    app_mod = s.device_modules.get("app")
    return s, r, (app_mod.current if app_mod is not None else None)


def record_kpu_inputs(s):
    """Every AI buffer the app hands the KPU, in order."""
    kpu = s.module("KPU")
    seen = []
    for name in ("forward", "run_yolo2"):
        real = getattr(kpu, name)

        def rec(task, img, *a, _real=real):
            seen.append(np.array(img._ai, copy=True))
            return _real(task, img, *a)
        setattr(kpu, name, rec)
    return seen


def loads(board):
    return [line.split()[1] for line in board.console_text().split("\r\n") if line.startswith("loading ")]


def test_a_press_after_the_heap_was_collected_is_taken_without_a_crash(tmp_path, models):
    board = make_board(tmp_path, models, [fixture_file("nncase-yolo20", "dog.bmp")])
    s = Session(board)
    collected = []

    def stop_check():
        if s.loaded_models() and not collected:       # right after the first model load
            s.rt.gc_collect()
            collected.append(board.clock.ms)
        return "stop" if board.clock.ms >= START + 1500 else None
    s.rt.stop_check = stop_check
    board.press(at_ms=START + 500)
    r = s.boot()
    assert collected and r.crash is None, r.crash
    assert loads(board) == ["mnist", "yolo20"]               # the press switched classifier -> detector
    assert s.device_modules["app"].current.manager.entry["name"] == "yolo20"


def test_the_simulator_reports_a_freed_handler_as_the_crash_it_is(tmp_path):
    board = Board(flash_root=tmp_path / "flash")
    (board.flash_root / "main.py").write_text(
        "import gc, time\nfrom Maix import GPIO\nfrom fpioa_manager import fm\n"
        "fm.register(16, fm.fpioa.GPIOHS0)\n"
        "class Key:\n    def __init__(self):\n        self.n = 0\n"
        "        GPIO(GPIO.GPIOHS0, GPIO.IN).irq(self.on, GPIO.IRQ_FALLING)\n"
        "    def on(self, pin):\n        self.n += 1\n"
        "k = Key()\ngc.collect()\ntime.sleep_ms(1000)\n")
    board.press(at_ms=600)
    r = Session(board).boot()
    assert r.crash is not None and "GPIOHS0's IRQ handler was freed" in r.crash
    assert "[simulated crash]" in board.console_text()


def centre_patch_scene():
    """Gray paper with a white square in the frame centre, nothing in the top-left."""
    scene = np.full((240, 320, 3), 90, np.uint8)
    scene[80:160, 120:200] = 255
    return scene


def test_on_the_ov2640_a_patch_at_the_frame_centre_reaches_the_classifier(tmp_path, models):
    scene = centre_patch_scene()
    board = make_board(tmp_path, models, [("patch", scene)])
    assert board.sensor == "ov2640"                          # the Maix Bit default
    s = Session(board)
    seen = record_kpu_inputs(s)
    s, r, app = run(board, START + 600, s)
    assert r.error is None and app.manager.entry["name"] == "mnist" and len(seen) > 5
    x = seen[-1]
    assert x.shape == (1, 28, 28)
    assert x[0, 11:17, 11:17].min() > 200 and x[0, :4, :4].max() < 120   # the patch in the middle, paper around
    # byte for byte what the host's framing rule says the camera gives the model
    assert np.array_equal(x, framing.model_input(scene, 28, 28, 1, "crop"))


def test_the_kpu_gets_framing_photo_input_for_a_photo_on_the_camera(tmp_path, models):
    astronaut = photo("astronaut")                           # 512x512: the camera covers its QVGA frame with it
    board = make_board(tmp_path, models, [("astronaut", astronaut)])
    board.press(at_ms=START + 400)
    s = Session(board)
    seen = record_kpu_inputs(s)
    s, r, app = run(board, START + 1200, s)
    assert loads(board) == ["mnist", "yolo20"]
    gray = [x for x in seen if x.shape == (1, 28, 28)]
    rgb = [x for x in seen if x.shape == (3, 240, 320)]
    assert gray and rgb
    assert np.array_equal(gray[0], framing.photo_input(astronaut, 28, 28, 1, "crop"))
    assert np.array_equal(rgb[-1], framing.photo_input(astronaut, 320, 240, 3, "crop"))


def test_the_devices_crop_box_is_the_hosts(tmp_path):
    board = Board(flash_root=tmp_path / "flash")
    install_app(board, DEVICE)
    s = Session(board)
    s.exec("import camera")
    device_crop = s.device_modules["camera"].crop_box
    sizes = [(w, h) for w in range(1, 321, 7) for h in range(1, 241, 11)] + [(224, 224), (64, 64), (28, 28),
                                                                              (320, 240), (160, 120), (240, 240)]
    for src in ((320, 240), (240, 320), (321, 239)):
        for w, h in sizes:
            for rule in framing.FRAMINGS:
                assert device_crop(*src, w, h, rule) == framing.crop_box(*src, w, h, rule), (src, w, h, rule)


def test_boxes_map_back_through_the_crop_onto_the_shown_frame(tmp_path):
    board = Board(flash_root=tmp_path / "flash")
    install_app(board, DEVICE)
    s = Session(board)
    s.exec("import camera, infer, image\nv = camera.View(224, 224, 3, 'crop')\nimg = image.Image()\n"
           "infer.draw_boxes(img, [('dog', 0.9, 112, 56, 28, 28)], v)")
    cam, g = s.device_modules["camera"], s.main_globals
    assert g["v"].to_frame(0, 0, 224, 224) == (40, 0, 240, 240)       # the model's whole input is the crop
    assert g["v"].to_frame(112, 56, 28, 28) == (160, 60, 30, 30)
    assert cam.View(160, 160, 3, "stretch").to_frame(10, 10, 20, 20) == (20, 15, 40, 30)
    px = g["img"]._px
    assert px[75, 160] != 0 and px[75, 159] == 0 and px[89, 175] != 0   # the box's left edge and bottom edge


def test_boot_held_from_reset_is_the_roms_isp_mode(tmp_path, models):
    board = make_board(tmp_path, models, [("patch", centre_patch_scene())])
    board.press(at_ms=0, hold_ms=3000)
    s, r, app = run(board, 5000)
    assert r.isp and r.error is None
    assert board.console_text() == ""                        # no MaixPy, no REPL: the ROM waits for kflash
    assert s.device_modules == {} and board.screen.shown == 0


def test_boot_pressed_in_the_announced_window_gives_safe_mode(tmp_path, models):
    board = make_board(tmp_path, models, [("patch", centre_patch_scene())])
    board.press(at_ms=700)
    s, r, app = run(board, 5000)
    out = board.console_text()
    assert not r.isp and r.stopped is None and r.error is None   # main.py returned: the REPL is free
    assert out.index("Press BOOT now for safe mode") < out.index("safe mode: app skipped")
    assert "app" not in s.device_modules and s.loaded_models() == 0


def test_without_a_press_the_window_passes_and_the_app_runs(tmp_path, models):
    board = make_board(tmp_path, models, [("patch", centre_patch_scene())])
    s, r, app = run(board, START + 300)
    assert "Press BOOT now for safe mode" in board.console_text() and app is not None and app.frames > 3
    assert board.clock.ms < START + 400


def test_with_an_sd_card_the_firmware_runs_the_cards_scripts_only(tmp_path, models):
    # the app and its models.json on /flash, a card with nothing on it: _boot.py writes its welcome main.py
    # onto the card and runs that; /flash's app never starts
    board = make_board(tmp_path, models, [("patch", centre_patch_scene())])
    board.sd_root = tmp_path / "sd"
    board.sd_root.mkdir()
    s, r, app = run(board, 3000)
    assert app is None and "startup" not in s.device_modules
    assert (board.sd_root / "main.py").is_file() and "Welcome to MaixPy" in (board.sd_root / "main.py").read_text()
    # what deploy installs instead: /sd/main.py that runs the /flash app
    from host_tools.deploy.sdcard import LAUNCHER
    (board.sd_root / "main.py").write_bytes(LAUNCHER)
    s, r, app = run(board, board.clock.ms + START + 500)
    assert r.error is None and app is not None and app.frames > 3 and app.manager.entry["name"] == "mnist"


def test_the_system_heap_returns_to_its_start_after_100_notices(tmp_path, models):
    board = make_board(tmp_path, models, [("patch", centre_patch_scene())])
    board.camera_present = False                         # every frame: the notice goes straight to the LCD
    s = Session(board)
    s.exec((board.flash_root / "boot.py").read_text(), "boot.py")
    s.exec("import app, KPU as kpu, image\na = app.App()\na.start()\n"
           "try:\n    kpu.forward(a.manager.task, image.Image())\nexcept ValueError as e:\n    err = e\n")
    assert str(s.main_globals["err"]).endswith("\r\n")   # the firmware's text, as the app receives it
    s.exec("a.tell(app.error_text(err))\na.frame()")
    start = s.rt.sys.free()
    for i in range(100):
        s.exec("a.tell('%d: ' + app.error_text(err))\na.frame()" % i)
    assert s.rt.sys.free() == start
    assert board.console_text().count("check img format err!") >= 100


def test_the_gc_heap_fragments_like_micropythons(tmp_path):
    # fill the heap with 38 KB images, drop every other one: more than 200 KB is free, in 38 KB holes, and a
    # 100 KB image fits none of them (first fit, no compaction: MicroPython never moves a block)
    board = Board(flash_root=tmp_path / "flash")
    s = Session(board)
    s.exec("import image, gc\nims = []\ntry:\n    while True:\n        ims.append(image.Image(size=(160, 120)))\n"
           "except MemoryError:\n    pass\nfor i in range(0, len(ims), 2):\n    ims[i] = None\n"
           "gc.collect()\nfree = gc.mem_free()")
    assert s.main_globals["free"] > 200 * 1024
    with pytest.raises(MemoryError) as e:
        s.exec("big = image.Image(size=(224, 224))")
    assert str(e.value) == XALLOC_FAILED
    s.exec("ims = None\nbig = image.Image(size=(224, 224))")          # once the rest is dropped, it fits


@pytest.fixture(scope="module")
def classifier_224(tmp_path_factory):
    """A 224x224 RGB classifier compiled by our own compiler (untrained weights: its outputs do not matter here,
    its memory does)."""
    pytest.importorskip("tensorflow")
    from host_tools.compiler import compile_file
    from host_tools.pipeline.arch import small_mobilenet
    from host_tools.pipeline.quantize import representative, to_int8_tflite
    out = tmp_path_factory.mktemp("c224")
    x = np.random.default_rng(0).random((8, 224, 224, 3), dtype=np.float32)
    (out / "c224_int8.tflite").write_bytes(to_int8_tflite(small_mobilenet(224, 10, widths=(8, 16, 16, 32)),
                                                          representative(x, 8)))
    compile_file(out / "c224_int8.tflite", out, "c224", "classifier", [str(i) for i in range(10)])
    return out / "c224.json"


@pytest.mark.slow
def test_1000_frames_of_a_224_classifier_from_qvga_never_raise_memory_error(tmp_path, classifier_224):
    photos = [("astronaut", photo("astronaut")), ("chelsea", photo("chelsea")), ("coffee", photo("coffee"))]
    board = make_board(tmp_path, [classifier_224], photos, hold_ms=700)
    s = Session(board)
    seen = record_kpu_inputs(s)
    s.rt.stop_check = lambda: "stop" if board.screen.shown >= 1000 else None
    r = s.boot()
    app = s.device_modules["app"].current
    assert r.stopped == "stop" and r.error is None and r.crash is None
    assert app.frames >= 999 and app.notice is None, app.notice
    assert "MemoryError" not in board.console_text() and "Heap Memory" not in board.console_text()
    assert len(seen) >= 999 and seen[0].shape == (3, 224, 224)
    # every frame went through cut + resize + pix_to_ai on the heap, with a collection before
    assert s.rt.gc.collections >= 1000
    names = {n for n, _ in photos}
    firsts = {}
    for x in seen:
        for n, p in photos:
            if n not in firsts and np.array_equal(x, framing.photo_input(p, 224, 224, 3, "crop")):
                firsts[n] = True
    assert set(firsts) == names                      # each photo reached the KPU as the host's framing says
