"""The simulated firmware around the KPU: imports, file systems, clock, button, heaps, boot, interrupt."""
import threading

import numpy as np
import pytest

from host_tools.sim import Board, Session


def session(tmp_path, sd=False, **kw):
    b = Board(flash_root=tmp_path / "flash", sd_root=(tmp_path / "sd") if sd else None, **kw)
    return b, Session(b)


def test_imports_only_what_maixpy_has(tmp_path):
    b, s = session(tmp_path)
    with pytest.raises(ImportError, match=r"^no module named 'numpy'$"):
        s.exec("import numpy")
    with pytest.raises(ImportError, match=r"^no module named 'subprocess'$"):
        s.exec("import subprocess")
    with pytest.raises(ImportError, match="has no model of module 'audio'"):
        s.exec("import audio")
    # time and os are the firmware's, not CPython's
    s.exec("import time, os, json, utime\nhas_perf = hasattr(time, 'perf_counter')\nsame = time is utime\n"
           "root = os.listdir('/')\nj = json.loads('{\"a\": [1, 2]}')")
    g = s.main_globals
    assert g["has_perf"] is False and g["same"] is True
    assert g["root"] == ["flash"] and g["j"] == {"a": [1, 2]}
    with pytest.raises(ValueError, match="^syntax error in JSON$"):
        s.exec("json.loads('{bad')")
    with pytest.raises(AttributeError):
        s.exec("import uhashlib\nuhashlib.sha256(b'x').hexdigest()")   # MicroPython has digest() only


def test_device_modules_come_from_the_current_directory_then_flash(tmp_path):
    b, s = session(tmp_path, sd=True)
    (b.flash_root / "helper.py").write_text("WHERE = 'flash'\n")
    (b.sd_root / "helper.py").write_text("WHERE = 'sd'\n")
    (b.flash_root / "only_flash.py").write_text("import helper\nSEEN = helper.WHERE\n")
    (b.sd_root / "json.py").write_text("SHADOW = True\n")       # a weak link: the file wins, like MicroPython
    (b.sd_root / "main.py").write_text("import helper, only_flash, json, sys\n"
                                       "result = (helper.WHERE, only_flash.SEEN, json.SHADOW, sys.path)\n")
    s.boot()
    assert s.main_globals["result"] == ("sd", "sd", True, ["", ".", "/sd", "/flash"])


def test_spiffs_has_no_directories_sd_has(tmp_path):
    b, s = session(tmp_path, sd=True)
    with pytest.raises(NotImplementedError, match="^SPIFFS not support$"):
        s.exec("import os\nos.mkdir('/flash/lib')")
    with pytest.raises(OSError) as e:
        s.exec("open('/flash/lib/x.py', 'w')")
    assert e.value.args[0] == 2
    s.exec("os.mkdir('/sd/lib')\nf = open('/sd/lib/x.py', 'w'); f.write('X = 1\\n'); f.close()\n"
           "listing = os.listdir('/sd/lib')")
    assert s.main_globals["listing"] == ["x.py"]
    assert (b.sd_root / "lib" / "x.py").read_text() == "X = 1\n"
    with pytest.raises(OSError) as e:
        s.exec("open('/flash/nothing.txt')")
    assert e.value.args[0] == 2 and str(e.value) == "[Errno 2] ENOENT"


def test_virtual_clock_is_deterministic_and_ticks_wrap(tmp_path):
    b, s = session(tmp_path)
    s.exec("import time\nt0 = time.ticks_ms()\ntime.sleep_ms(250)\nd = time.ticks_diff(time.ticks_ms(), t0)\n"
           "w = time.ticks_diff(time.ticks_add(0, -5), 5)")
    assert 250 <= s.main_globals["d"] <= 251
    assert s.main_globals["w"] == -10
    # a busy wait ends: every call into the firmware costs a little board time
    s.exec("t0 = time.ticks_ms()\nn = 0\nwhile time.ticks_diff(time.ticks_ms(), t0) < 50:\n    n += 1")
    assert s.main_globals["n"] > 100


BUTTON_APP = """
import time
from Maix import GPIO
from fpioa_manager import fm
from board import board_info
edges = []
fm.register(board_info.BOOT_KEY, fm.fpioa.GPIOHS0)
key = GPIO(GPIO.GPIOHS0, GPIO.IN)
key.irq(lambda pin: edges.append((time.ticks_ms(), pin.value())), GPIO.IRQ_FALLING)
levels = []
for i in range(60):
    levels.append(key.value())
    time.sleep_ms(10)
"""


def test_boot_key_irq_sees_every_bounce_edge_and_reads_0_while_pressed(tmp_path):
    b, s = session(tmp_path)
    b.press(at_ms=205.0, hold_ms=150, bounce=3, bounce_ms=4)
    s.exec(BUTTON_APP)
    edges, levels = s.main_globals["edges"], s.main_globals["levels"]
    assert len(edges) == 4 + 3          # 4 falling edges in the press burst, 3 in the release burst
    assert edges[0][0] == 205 and edges[3][0] <= 209
    assert 0 in levels and levels[0] == 1 and levels[-1] == 1
    # without the FPIOA routing IO16 to the GPIOHS, the pin never sees the key
    b2, s2 = session(tmp_path / "b2")
    b2.press(at_ms=205.0)
    s2.exec(BUTTON_APP.replace("fm.register(board_info.BOOT_KEY, fm.fpioa.GPIOHS0)", ""))
    assert s2.main_globals["edges"] == [] and 0 not in s2.main_globals["levels"]


def test_gc_heap_accounts_images_until_collected(tmp_path):
    b, s = session(tmp_path)
    s.exec("import image, gc\ngc.collect()\nf0 = gc.mem_free()\nimg = image.Image()\nf1 = gc.mem_free()\n"
           "img = None\nf2 = gc.mem_free()\ngc.collect()\nf3 = gc.mem_free()")
    g = s.main_globals
    assert g["f0"] - g["f1"] == 320 * 240 * 2 + 64      # the pixels, and the image object in two 32-byte blocks
    assert g["f2"] == g["f1"]            # dropped but not yet collected
    assert g["f3"] == g["f0"]
    assert 480 * 1024 < g["f0"] < 512 * 1024
    with pytest.raises(MemoryError):
        s.exec("big = [image.Image() for i in range(4)]")


def test_boot_runs_boot_then_main_and_survives_a_broken_boot_py(tmp_path):
    b, s = session(tmp_path)
    (b.flash_root / "boot.py").write_text("print('boot')\nraise ValueError('broken boot')\n")
    (b.flash_root / "main.py").write_text("import os\nprint('main in', os.getcwd())\n")
    r = s.boot()
    out = b.console_text()
    assert out.index("boot") < out.index("main in /flash")
    assert 'File "boot.py", line 2, in <module>\r\nValueError: broken boot\r\n' in out
    assert isinstance(r.error, ValueError) and r.stopped is None


def test_machine_reset_reboots_with_fresh_firmware_state(tmp_path):
    b, s = session(tmp_path)
    (b.flash_root / "main.py").write_text(
        "import os, machine\n"
        "if 'flag' not in os.listdir():\n"
        "    open('flag', 'w').close()\n"
        "    machine.reset()\n"
        "print('second boot')\n")
    r = s.boot()
    assert r.resets == 1
    assert b.console_text().count("[MaixPy] init end") == 2 and "second boot" in b.console_text()


def test_interrupt_raises_keyboard_interrupt_at_the_next_firmware_call(tmp_path):
    b, s = session(tmp_path)
    s.exec("import time\ncount = 0")
    timer = threading.Timer(0.3, s.interrupt)
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        s.exec("while True:\n    time.sleep_ms(1)\n    count += 1")
    timer.join()
    assert s.main_globals["count"] > 0


WINDOWED = ("import sensor, lcd\nlcd.init()\nsensor.reset()\nsensor.set_pixformat(sensor.RGB565)\n"
            "sensor.set_framesize(sensor.QVGA)\nsensor.set_windowing((224, 224))\nimg = sensor.snapshot()\n"
            "px = img.get_pixel(0, 0)\nlcd.display(img)")


@pytest.mark.parametrize("sensor, x0", [("ov2640", 0), ("gc0328", 48)])
def test_set_windowing_crops_the_top_left_on_the_ov2640_and_the_centre_on_the_gc0328(tmp_path, sensor, x0):
    scene = np.zeros((240, 320, 3), np.uint8)
    scene[:, :, 0] = 200
    scene[:, :, 2] = np.arange(320, dtype=np.uint8)[None, :]
    b, s = session(tmp_path, camera=[("ramp", scene)], sensor=sensor)
    s.exec(WINDOWED)
    img = s.main_globals["img"]
    assert (img.width(), img.height()) == (224, 224)
    assert s.main_globals["sensor"].width() == 320          # width() reports the frame, not the window
    with pytest.raises(ValueError, match="^value must be multiple of 8$"):
        s.exec("sensor.set_windowing((28, 28))")
    with pytest.raises(TypeError, match="^not found sensor$"):
        Session(b).exec("import sensor\nsensor.snapshot()")
    ai = img._ai
    assert ai.shape == (3, 224, 224) and ai[0].min() == 200 and ai[2, 0, 0] == x0
    r, g, bl = s.main_globals["px"]
    assert abs(r - 200) <= 4 and g == 0 and abs(bl - x0) <= 4                      # through RGB565
    lcd = b.screen.rgb()
    assert lcd[:, :48].max() == 0 and lcd[8, 48, 0] > 190                          # centred, black borders


def test_tracebacks_name_micropython_exception_types(tmp_path):
    b, s = session(tmp_path)
    (b.flash_root / "main.py").write_text("def f():\n    open('/flash/none.txt')\nf()\n")
    s.boot()
    assert ('File "main.py", line 3, in <module>\r\n  File "main.py", line 2, in f\r\n'
            'OSError: [Errno 2] ENOENT\r\n') in b.console_text()


def test_code_micropython_cannot_compile_fails_here_too(tmp_path):
    b, s = session(tmp_path)
    (b.flash_root / "modern.py").write_text("x = 1\ntext = f'{x}'\n")
    with pytest.raises(SyntaxError) as e:
        s.exec("import modern")
    assert e.value.lineno == 2
    with pytest.raises(SyntaxError):
        s.exec("if (n := 3):\n    pass")
    s.exec("text = '%d' % 1")     # what MicroPython 1.11 accepts runs


def test_new_images_are_writable_and_keep_no_ai_buffer(tmp_path):
    b, s = session(tmp_path)
    s.exec("import image\ng = image.Image(size=(40, 40)).to_grayscale()\n"
           "for im in (g.resize(20, 20), image.Image(size=(40, 40)).resize(16, 16), g.copy()):\n"
           "    im.draw_string(0, 0, 'x', color=255 if im.format() == image.GRAYSCALE else (255, 0, 0))\n"
           "    im.set_pixel(1, 1, 200 if im.format() == image.GRAYSCALE else (0, 0, 255))\n"
           "small = g.resize(20, 20)")
    assert s.main_globals["small"]._ai is None and s.main_globals["small"].get_pixel(1, 1) == 0


def test_firmware_parts_not_modelled_say_so(tmp_path):
    b, s = session(tmp_path)
    with pytest.raises(NotImplementedError, match="machine.UART exists on the board but is not modelled"):
        s.exec("import machine\nmachine.UART(machine.UART.UART1, 115200)")
    s.exec("import image\ng = image.Image(size=(8, 8)).to_grayscale()\ng.set_pixel(0, 0, 10)\ng.invert()\n"
           "v = g.get_pixel(0, 0)")
    assert s.main_globals["v"] == 245


def test_stdout_takes_bytes_and_utils_reads_flash_but_cannot_write_it(tmp_path):
    b, s = session(tmp_path)
    b.write_flash(0x300000, b"\x03\x00\x00\x00")
    s.exec("import sys\nsys.stdout.write(b'ab')\nfrom Maix import utils\n"
           "print(bytes(utils.flash_read(0x300000, 4)), hasattr(utils, 'flash_write'))\n", "t.py")
    # MicroPython writes a buffer's bytes as they are; maix_utils.c has flash_write commented out
    assert b.console_text() == "abb'\\x03\\x00\\x00\\x00' False\r\n"


def test_the_firmware_font_is_8x12_proportional_unless_asked_monospaced(tmp_path):
    b, s = session(tmp_path)
    s.exec("import image\n"
           "def ink(text, **kw):\n"
           "    img = image.Image(size=(200, 30))\n    img.draw_string(10, 5, text, **kw)\n    return img\n"
           "prop = ink('iiii')\nmono = ink('iiii', mono_space=True)\nrows = ink('A')\nbig = ink('A', scale=2)")
    g = s.main_globals

    def extent(img, axis):
        px = np.flatnonzero(img._px.any(axis=axis))
        return px.min(), px.max()
    from host_tools.k210 import font
    # proportional: 'i' inks columns 2..3 of its cell, so it advances 3 pixels; monospaced, 8
    assert font.width("iiii") == 12 and font.width("iiii", mono_space=True) == 32 and font.width("WW") == 12
    assert font.width("a b") == 6 + 3 + 6                    # a space advances 3
    prop, mono = extent(g["prop"], 0), extent(g["mono"], 0)
    assert prop[1] - prop[0] < 3 * 3 + 8 and mono[1] - mono[0] >= 3 * 8
    top, bottom = extent(g["rows"], 1)
    assert 5 <= top and bottom < 5 + 12                     # inside its 12-pixel-high cell
    assert extent(g["big"], 1)[1] < 5 + 24 and extent(g["big"], 1)[1] > bottom


@pytest.mark.parametrize("call, leaks", [("lcd.draw_string(4, 4, '')", True), ("lcd.draw_string(4, 305, 'x')", True),
                                         ("lcd.draw_string(320, 4, 'x')", True), ("lcd.draw_string(4, 304, 'x')", False),
                                         ("lcd.draw_string(4, 4, 'hello')", False)])
def test_lcd_draw_string_loses_its_buffers_when_it_returns_early(tmp_path, call, leaks):
    from host_tools.k210.memory import draw_string_buffers
    b, s = session(tmp_path)
    s.exec("import lcd\nlcd.init()")
    before = s.rt.sys.free()
    s.exec(call)
    assert before - s.rt.sys.free() == (draw_string_buffers(320) if leaks else 0)
    assert draw_string_buffers(320) == 7721                  # "about 7.7 KB" per call


def test_boot_py_and_main_py_run_from_the_card_only_and_cover_files_replace_flashs(tmp_path):
    b, s = session(tmp_path, sd=True)
    (b.flash_root / "main.py").write_text("print('flash main')\n")
    (b.sd_root / "cover.boot.py").write_text("print('covered boot')\n")
    r = s.boot()
    out = b.console_text()
    # _boot.py copied cover.boot.py over /flash/boot.py and reset; then ran the card's (welcome) main.py only
    assert r.resets == 1 and (b.flash_root / "boot.py").read_text() == "print('covered boot')\n"
    assert "flash main" not in out and "covered boot" not in out
    assert "Welcome to MaixPy" in (b.sd_root / "main.py").read_text()


def loop_ms(tmp_path, dual, work_ms):
    """Board ms per pass of a loop that takes a snapshot and then works work_ms (the sensor sends 60 frames/s)."""
    b, s = session(tmp_path)
    s.exec("import sensor, time\nsensor.reset(dual_buff=%s)\nsensor.set_pixformat(sensor.RGB565)\n"
           "sensor.set_framesize(sensor.QVGA)\nsensor.run(1)\nfor i in range(5):\n    img = sensor.snapshot()\n"
           "t0 = time.ticks_us()\nfor i in range(30):\n    img = sensor.snapshot()\n    time.sleep_ms(%d)\n"
           "per_pass = time.ticks_diff(time.ticks_us(), t0) / 30000" % (dual, work_ms))
    return s.main_globals["per_pass"]


def test_single_buffered_snapshot_waits_for_a_whole_new_frame_double_buffered_hands_one_over(tmp_path):
    frame = 1000 / 60
    # single: each snapshot waits for the next frame to start and end: two frame times at best
    assert loop_ms(tmp_path / "a", False, 0) == pytest.approx(2 * frame, rel=0.02)
    assert loop_ms(tmp_path / "b", False, 10) == pytest.approx(2 * frame, rel=0.05)
    assert loop_ms(tmp_path / "c", False, 20) == pytest.approx(3 * frame, rel=0.05)
    # dual: the frame converted meanwhile is handed over: the sensor's rate while the loop is quicker than it
    assert loop_ms(tmp_path / "d", True, 0) == pytest.approx(frame, rel=0.02)
    assert loop_ms(tmp_path / "e", True, 10) == pytest.approx(frame, rel=0.05)
    assert 21 < loop_ms(tmp_path / "f", True, 20) < 2 * frame
