"""The studio page in a real headless browser (Debian's Chromium driven by Selenium), on the virtual board: LCD
frames arrive and change, BOOT switches CLS -> DET on the LCD and in the state pane, Chromium's fake webcam
becomes the simulated camera, the editor (CodeMirror) highlights Python and an edit typed into it, saved, shows on
the LCD after a reset, Ctrl-C and `1+1` typed into the REPL terminal (xterm.js) stop the app and answer 2, a script
runs with its output in the console terminal, reading files leaves the app running, a second tab is read-only,
and a request without the token is refused. Prints the page-load-to-first-frame time. Then the page with --port
on `make board`'s pty, as for a real board: no LCD, a file typed, saved and run, the REPL terminal.

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
from test_deploy_support import VirtualBoardProcess

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
INSTALL = ("the studio's browser test needs Debian's Chromium and its driver: run `apt-get install -y chromium "
           "chromium-driver` as root (.ci/run does)")
# Chromium's own stand-in camera (an animated test pattern), allowed without the permission prompt
FAKE_WEBCAM = ("--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream")
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


def serve_studio(args):
    """`python -m host_tools studio ARGS` until the generator is closed; yields the URL it prints."""
    p = subprocess.Popen([sys.executable, "-m", "host_tools", "studio", "--http-port", "0"] + list(args),
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
def studio(tmp_path_factory):
    yield from serve_studio(["--state", str(tmp_path_factory.mktemp("studio") / "board")])


@pytest.fixture(scope="module")
def studio_on_a_port(tmp_path_factory):
    """`studio --port` on `make board`'s pty: the page as it is for a real board."""
    board = VirtualBoardProcess(tmp_path_factory.mktemp("studio-port") / "board", ["--fast", "--no-usb"])
    try:
        yield from serve_studio(["--port", board.port])
    finally:
        board.close()


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.fail(INSTALL)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1500",
              "--disable-gpu") + FAKE_WEBCAM:
        opts.add_argument(a)
    d = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    yield d
    d.quit()


def lcd(d) -> np.ndarray:
    """The LCD frame the page shows now, at the panel's own 320x240 pixels (once the <img> has decoded the frame
    just set on it: before that it draws nothing, which reads as black)."""
    url = wait(lambda: d.execute_script("""const img = document.getElementById('lcd');
        if (!img.complete || !img.naturalWidth) return null;
        const c = document.createElement('canvas'); c.width = 320; c.height = 240;
        c.getContext('2d').drawImage(img, 0, 0, 320, 240); return c.toDataURL('image/png');"""), 10, "a decoded LCD frame")
    return png_rgb(url)


def png_rgb(data_url) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def text(d, id_):
    return d.find_element("id", id_).text


def shot(d, pane):
    folder = os.environ.get("MAIXKIT_STUDIO_SHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        d.find_element("id", "pane-" + pane).screenshot(str(Path(folder) / ("studio-%s.png" % pane)))


RED, BLUE = (255, 0, 0), (0, 0, 255)


def colour_at(rgb, y, x, colour) -> bool:
    return bool(np.all(np.abs(rgb[y, x].astype(int) - colour) < 60))


MIDDLE = (slice(40, 200), slice(20, 300))   # the LCD below the overlay's top strips and above its fps line
WEBCAM_TOL = 12.0                           # RGB565 rounding and the camera's own view of the frame stay below


def webcam_on_lcd(d) -> float:
    """How far the LCD is from the nearest of the last webcam frames the page sent (mean |difference| per
    channel, middle of the frame); inf before any was sent."""
    sent = d.execute_script("return studio.webcamSent")
    if not sent:
        return float("inf")
    now = lcd(d)[MIDDLE].astype(int)
    return min(float(np.abs(now - png_rgb(u)[MIDDLE].astype(int)).mean()) for u in sent)


def term(d, name) -> str:
    """The text of an xterm.js terminal of the page (console or repl), wrapped rows joined."""
    return d.execute_script("return studio.termText(studio[arguments[0] + 'Term'])", name)


def new_file(d, path):
    """New, the path typed into the page's prompt: the empty file is open in the editor."""
    d.find_element("id", "new").click()
    wait(lambda: d.switch_to.alert, 10, "the new-file prompt")
    alert = d.switch_to.alert
    alert.send_keys(path)
    alert.accept()
    wait(lambda: text(d, "path") == path, 30, "%s open" % path)


def type_keys(d, *keys):
    """Keys as the user types them, into the element that has the focus."""
    from selenium.webdriver.common.action_chains import ActionChains
    ActionChains(d).send_keys(*keys).perform()


def test_the_page_drives_the_virtual_board(studio, browser, tmp_path):
    d = browser
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    # page load -> first LCD frame (the page stamps performance.now() when the first frame arrives)
    d.get(studio)
    first_ms = wait(lambda: d.execute_script("return window.firstFrameMs || 0"), 30, "the first LCD frame")
    ready_ms = d.execute_script("return performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
    print("\nstudio: page load to first LCD frame %.0f ms (page and its scripts ready at %.0f ms)" % (first_ms, ready_ms))
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
    Image.new("RGB", (320, 240), RED).save(red)
    d.find_element("id", "camera-files").send_keys(str(red))
    wait(lambda: colour_at(lcd(d), 130, 160, RED), 30, "red on the LCD")
    assert "1 picture" in text(d, "camera-status")

    # the webcam (Chromium's fake one): its frames become the simulated camera's, the LCD follows them
    d.find_element("id", "webcam").click()
    wait(lambda: "frame(s) sent" in text(d, "camera-status"), 30, "webcam frames sent to the camera")
    wait(lambda: webcam_on_lcd(d) < WEBCAM_TOL, 30, "a webcam frame on the LCD")
    print("studio: LCD vs the nearest webcam frame sent, mean |difference| %.1f of 255" % webcam_on_lcd(d))
    assert not colour_at(lcd(d), 130, 160, RED)
    a = lcd(d)
    wait(lambda: not np.array_equal(lcd(d)[MIDDLE], a[MIDDLE]) and webcam_on_lcd(d) < WEBCAM_TOL, 30,
         "the next webcam frame on the LCD")
    shot(d, "camera")
    # choosing pictures again stops the webcam: the LCD shows them and stays
    blue = tmp_path / "blue.png"
    Image.new("RGB", (320, 240), BLUE).save(blue)
    d.find_element("id", "camera-files").send_keys(str(blue))
    wait(lambda: colour_at(lcd(d), 130, 160, BLUE), 30, "blue on the LCD")
    time.sleep(1.5)             # three webcam periods: a webcam still sending would have replaced it
    assert colour_at(lcd(d), 130, 160, BLUE) and d.find_element("id", "webcam-video").get_attribute("hidden")
    assert "1 picture" in text(d, "camera-status")      # blue alone: the earlier choice is not kept

    # the models pane lists models.json's entries with their manifests
    d.find_element("id", "models-refresh").click()
    wait(lambda: "digits" in text(d, "models") and "faces" in text(d, "models"), 30, "the models pane")
    shot(d, "models")

    # open screen.py on /flash, change a string, save (mpy-cross first), reset: the LCD shows the change
    d.find_element("id", "refresh").click()
    wait(lambda: d.find_elements("css selector", "#tree li[data-path='/flash/screen.py']"), 30, "screen.py in the tree")
    shot(d, "files")
    d.find_element("css selector", "#tree li[data-path='/flash/screen.py']").click()
    wait(lambda: "def overlay" in editor_text(d), 30, "screen.py in the editor")
    # reading (models, tree, a file) on the virtual board left the app running: frames still come, still DET
    n = int(d.find_element("id", "lcd").get_attribute("data-frames"))
    wait(lambda: int(d.find_element("id", "lcd").get_attribute("data-frames")) >= n + 3, 30, "frames after reading")
    assert text(d, "state-mode") == "DET"
    old = editor_text(d)
    assert "lines = wrap(text, max(" in old
    # CodeMirror's Python mode: the keywords carry its keyword class
    keywords = {e.text for e in d.find_elements("css selector", "#pane-editor .CodeMirror .cm-keyword")}
    assert {"def", "return"} <= keywords, keywords
    d.execute_script("studio.editor.setValue(arguments[0])",
                     old.replace("lines = wrap(text, max(", "lines = wrap(f'{text}', max("))
    d.find_element("id", "save").click()
    wait(lambda: "not saved" in text(d, "editor-status"), 30, "the f-string refused")
    assert "mpy-cross" in text(d, "editor-status")
    # the edit that stays is typed: the cursor put on `text` in `wrap(text, max(`, then keys into CodeMirror
    d.execute_script("studio.editor.setValue(arguments[0])", old)
    d.execute_script("""const cm = studio.editor, at = cm.getValue().indexOf('lines = wrap(text, max(') + 13;
                    cm.focus(); cm.setSelection(cm.posFromIndex(at), cm.posFromIndex(at + 4));""")
    type_keys(d, "str(text).replace('fps', 'frames/s')")
    assert "lines = wrap(str(text).replace('fps', 'frames/s'), max(" in editor_text(d)
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

    # the REPL terminal: Ctrl-C stops the running app, `1+1` answers 2
    d.find_element("css selector", "#repl .xterm").click()
    before = len(term(d, "repl"))
    ActionChains(d).key_down(Keys.CONTROL).send_keys("c").key_up(Keys.CONTROL).perform()
    wait(lambda: "KeyboardInterrupt" in term(d, "repl")[before:] and term(d, "repl").endswith(">>>"), 30,
         "the app stopped by Ctrl-C in the terminal")
    type_keys(d, "1+1", Keys.ENTER)
    wait(lambda: term(d, "repl").endswith(">>> 1+1\n2\n>>>"), 30, "1+1 answered in the terminal")

    # a new script, run, its output in the console
    new_file(d, "/flash/hello_studio.py")
    d.execute_script("studio.editor.setValue(arguments[0])", "for i in range(3):\n    print('tick', i)\n")
    d.find_element("id", "save").click()
    wait(lambda: text(d, "editor-status").startswith("saved"), 30, "hello_studio.py saved")
    d.find_element("id", "run").click()
    wait(lambda: "--- end of" in term(d, "console"), 30, "the script's output")
    assert "tick 0\ntick 1\ntick 2\n--- end of" in term(d, "console")
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
    assert wait(lambda: d.execute_script("return window.studio && studio.editor.getOption('readOnly') === true && "
                                         "studio.replTerm.options.disableStdin === true"), 30, "a read-only editor")
    d.close()
    d.switch_to.window(first)

    # no token, no answer
    base = studio.split("?", 1)[0]
    for path in ("", "api/tree", "api/file?path=/flash/main.py"):
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(base + path, timeout=10)
        assert e.value.code == 403


def editor_text(d) -> str:
    return d.execute_script("return studio.editor.getValue()")


def test_the_page_on_a_real_boards_port(studio_on_a_port, browser):
    """With --port: no LCD (the board's own screen is the display), every file action over the REPL; a file made,
    typed and run from the page, and the REPL terminal, on `make board`'s pty."""
    from selenium.webdriver.common.keys import Keys
    d = browser
    d.get(studio_on_a_port)
    wait(lambda: "board on" in text(d, "board"), 30, "the hello")
    assert not d.find_element("id", "lcd").is_displayed() and d.find_element("id", "lcd-note").is_displayed()
    assert "Every file action goes over the REPL" in text(d, "files-note")
    new_file(d, "/flash/on_port.py")
    d.execute_script("studio.editor.focus()")
    type_keys(d, "for i in range(2):", Keys.ENTER, "print('answer', i, 6 * 7)")     # CodeMirror indents the body
    d.find_element("id", "save").click()
    wait(lambda: text(d, "editor-status").startswith("saved"), 30, "on_port.py saved")
    assert {"for", "in"} <= {e.text for e in d.find_elements("css selector", "#pane-editor .cm-keyword")}
    d.find_element("id", "refresh").click()
    wait(lambda: d.find_elements("css selector", "#tree li[data-path='/flash/on_port.py']"), 30, "the file listed")
    d.find_element("id", "run").click()
    wait(lambda: "--- end of" in term(d, "console"), 30, "the run's output")
    assert "\nanswer 0 42\nanswer 1 42\n--- end of" in term(d, "console"), term(d, "console")
    d.find_element("css selector", "#repl .xterm").click()
    type_keys(d, Keys.ENTER)
    wait(lambda: term(d, "repl").endswith(">>>"), 30, "a prompt in the terminal")
    type_keys(d, "6*7", Keys.ENTER)
    wait(lambda: term(d, "repl").endswith(">>> 6*7\n42\n>>>"), 30, "6*7 answered in the terminal")
