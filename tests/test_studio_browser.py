"""The studio page in a real headless browser (Debian's Chromium driven by Selenium), on the virtual board: LCD
frames arrive and change, BOOT switches CLS -> DET on the LCD and in the state pane, an edit of screen.py saved
from the editor shows on the LCD after a reset, a script runs with its output in the console, a second tab is
read-only, and a request without the token is refused. Prints the page-load-to-first-frame time.

MAIXKIT_STUDIO_SHOTS=DIR also saves a screenshot of each pane there (docs/studio/ holds the committed ones)."""
import base64
import io
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from studio_lcd import says, says_anywhere_on_row

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
INSTALL = ("the studio's browser test needs Debian's Chromium and its driver: run `apt-get install -y chromium "
           "chromium-driver` as root (.ci/run does)")
YELLOW, WHITE = (255, 255, 0), (255, 255, 255)
FPS_ROW = 240 - 14           # screen.overlay's fps line: the frame's height less one LINE_H


def wait(fn, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError("timed out after %.0f s waiting for %s" % (timeout, what))


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    state = tmp_path_factory.mktemp("studio") / "board"
    p = subprocess.Popen([sys.executable, "-m", "host_tools", "studio", "--http-port", "0", "--state", str(state)],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         env=dict(os.environ, PYTHONUNBUFFERED="1"))
    url, seen = None, []
    end = time.monotonic() + 180
    while url is None and time.monotonic() < end:
        line = p.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("open http://127.0.0.1:"):
            url = line.split()[1]
    if url is None:
        p.kill()
        pytest.fail("studio did not print its URL: %s" % "".join(seen)[-2000:])
    yield url
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail(INSTALL)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1500",
              "--disable-gpu"):
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield d
    d.quit()


def lcd(d) -> np.ndarray:
    """The LCD frame the page shows now, at the panel's own 320x240 pixels."""
    url = d.execute_script("""const img = document.getElementById('lcd');
        const c = document.createElement('canvas'); c.width = 320; c.height = 240;
        c.getContext('2d').drawImage(img, 0, 0, 320, 240); return c.toDataURL('image/png');""")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).convert("RGB"))


def text(d, id_):
    return d.find_element("id", id_).text


def shot(d, pane):
    folder = os.environ.get("MAIXKIT_STUDIO_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        d.find_element("id", "pane-" + pane).screenshot(str(Path(folder) / ("studio-%s.png" % pane)))


def red_at(rgb, y, x) -> bool:
    r, g, b = (int(v) for v in rgb[y, x])
    return r > 200 and g < 60 and b < 60


def test_the_page_drives_the_virtual_board(studio, browser, tmp_path):
    d = browser
    from selenium.webdriver.common.action_chains import ActionChains

    # page load -> first LCD frame (the page stamps performance.now() when the first frame arrives)
    d.get(studio)
    first_ms = wait(lambda: d.execute_script("return window.firstFrameMs || 0"), 30, "the first LCD frame")
    print("\nstudio: page load to first LCD frame %.0f ms" % first_ms)
    assert first_ms < 3000

    # LCD frames change
    a = lcd(d)
    wait(lambda: int(d.find_element("id", "lcd").get_attribute("data-frames") or 0) >= 5, 30, "5 LCD frames")
    wait(lambda: not np.array_equal(lcd(d), a), 30, "a different LCD frame")

    # BOOT: CLS -> DET, on the LCD and in the state pane
    wait(lambda: text(d, "state-mode") == "CLS" and says(lcd(d), "CLS", 4, 2, YELLOW), 60, "CLS on LCD and state")
    shot(d, "lcd")
    shot(d, "state")
    ActionChains(d).click(d.find_element("id", "boot")).perform()
    wait(lambda: text(d, "state-mode") == "DET" and says(lcd(d), "DET", 4, 2, YELLOW), 60, "DET after BOOT")

    # the camera picker: a picture sent from the page is what the virtual camera sees
    red = tmp_path / "red.png"
    Image.new("RGB", (320, 240), (255, 0, 0)).save(red)
    d.find_element("id", "camera-files").send_keys(str(red))
    wait(lambda: red_at(lcd(d), 130, 160), 30, "red on the LCD")
    assert "1 picture" in text(d, "camera-status")

    # the models pane lists models.json's entries with their manifests
    d.find_element("id", "models-refresh").click()
    wait(lambda: "digits" in text(d, "models") and "faces" in text(d, "models"), 30, "the models pane")
    shot(d, "models")
    shot(d, "camera")

    # open screen.py on /flash, change a string, save (mpy-cross first), reset: the LCD shows the change
    d.find_element("id", "refresh").click()
    wait(lambda: d.find_elements("css selector", "#tree li[data-path='/flash/screen.py']"), 30, "screen.py in the tree")
    shot(d, "files")
    d.find_element("css selector", "#tree li[data-path='/flash/screen.py']").click()
    wait(lambda: "def overlay" in d.find_element("id", "editor").get_attribute("value"), 30, "screen.py in the editor")
    old = d.find_element("id", "editor").get_attribute("value")
    assert "lines = wrap(text, max(" in old
    set_editor(d, old.replace("lines = wrap(text, max(", "lines = wrap(f'{text}', max("))
    d.find_element("id", "save").click()
    wait(lambda: "not saved" in text(d, "editor-status"), 30, "the f-string refused")
    assert "mpy-cross" in text(d, "editor-status")
    set_editor(d, old.replace("lines = wrap(text, max(", "lines = wrap(str(text).replace('fps', 'frames/s'), max("))
    d.find_element("id", "save").click()
    wait(lambda: text(d, "editor-status").startswith("saved"), 30, "screen.py saved")
    shot(d, "editor")
    d.find_element("id", "reset").click()
    try:
        wait(lambda: says_anywhere_on_row(lcd(d), "frames/s", FPS_ROW, WHITE), 60, "'frames/s' on the LCD after reset")
    except AssertionError:
        Image.fromarray(lcd(d)).save(tmp_path / "lcd.png")
        raise AssertionError("no 'frames/s' on the LCD (%s); state: %s; console: %s"
                             % (tmp_path / "lcd.png", text(d, "state-mode"), text(d, "notices")[-600:]))

    # a new script, run, its output in the console
    d.find_element("id", "new").click()
    wait(lambda: d.switch_to.alert, 10, "the new-file prompt")
    alert = d.switch_to.alert
    alert.send_keys("/flash/hello_studio.py")
    alert.accept()
    wait(lambda: text(d, "path") == "/flash/hello_studio.py", 30, "the new file open")
    set_editor(d, "for i in range(3):\n    print('tick', i)\n")
    d.find_element("id", "save").click()
    wait(lambda: text(d, "editor-status").startswith("saved"), 30, "hello_studio.py saved")
    d.find_element("id", "run").click()
    wait(lambda: "tick 2" in text(d, "console") and "--- end of" in text(d, "console"), 30, "the script's output")
    assert "tick 0\ntick 1\ntick 2" in text(d, "console")
    repl = d.find_element("id", "repl-input")
    repl.send_keys("6 * 7\n")
    wait(lambda: "42" in text(d, "console").split(">>> 6 * 7", 1)[-1], 30, "the REPL's answer")
    shot(d, "console")

    # BOOT held through a reset: the ROM's ISP mode, no app; a plain reset brings the app back
    d.find_element("id", "reset-held").click()
    wait(lambda: text(d, "state-mode").startswith("ISP"), 30, "ISP mode in the state pane")
    d.find_element("id", "reset").click()
    wait(lambda: text(d, "state-mode") == "CLS", 60, "the app again after a reset")

    # a second tab: a read-only view
    first = d.current_window_handle
    d.switch_to.new_window("tab")
    d.get(studio)
    wait(lambda: "read-only" in text(d, "role"), 30, "the read-only note")
    assert not d.find_element("id", "save").is_enabled() and not d.find_element("id", "boot").is_enabled()
    d.close()
    d.switch_to.window(first)

    # no token, no answer
    base = studio.split("?", 1)[0]
    for path in ("", "api/tree", "api/file?path=/flash/main.py"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + path, timeout=10)
        assert e.value.code == 403


def set_editor(d, value):
    d.execute_script("const e = document.getElementById('editor'); e.value = arguments[0];"
                     "e.dispatchEvent(new Event('input'));", value)
