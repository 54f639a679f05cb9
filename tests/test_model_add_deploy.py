"""Someone else's kmodel onto the board the way a user puts it there: `model add` nncase's 20-class YOLO into a
models folder, start the virtual Maix Bit with dog.bmp as its camera, `deploy --detector yolo`, press BOOT, and read
the LCD frames the board writes: the app draws bicycle, car and dog where the fixture's own input bytes put them
(within 3 pixels) and where a real K210's LCD shows them in the fixture's photo; again after `flash write --kfpkg`
moves the model."""
import json
import threading
import time

import numpy as np
import pytest
from PIL import Image

from conftest import fixture_file
from host_tools.__main__ import main as cli
from host_tools.sim.firmware.image import text_mask
from studio_lcd import says
from test_deploy_support import VirtualBoardProcess
from test_deploy_vendor_kfpkg import vendor_kfpkg

# From ../shared/fixtures/README.md (nncase-yolo20): the example's classes, anchors, threshold and NMS.
VOC = ("aeroplane,bicycle,bird,boat,bottle,bus,car,cat,chair,cow,diningtable,dog,horse,motorbike,person,"
       "pottedplant,sheep,sofa,train,tvmonitor")
ANCHORS = "1.08,1.19,3.42,4.41,6.63,11.38,9.42,5.11,16.62,10.52"
GREEN = (0, 255, 0)            # device/lib/infer.py BOX: each box's outline and its label tab
BLACK = (0, 0, 0)
YELLOW = (255, 255, 0)         # the mode title (device/lib/app.py)
NEAR = 3                       # pixels a drawn box may sit from the fixture's box (RGB565 camera vs the .bin bytes)


def expected_boxes(capsys):
    """The boxes of the bytes nncase's example fed the KPU (dog_rgb888_planar_320x240.bin), decoded with the
    README's anchors, threshold and NMS (not the manifest's: a wrong `model add` must show): [(label, x, y, w, h)]
    in the 320x240 input, which is the whole camera frame."""
    capsys.readouterr()
    assert cli(["kmodel", "run", str(fixture_file("nncase-yolo20", "yolo.kmodel")), "--input",
                str(fixture_file("nncase-yolo20", "dog_rgb888_planar_320x240.bin")), "--labels", VOC,
                "--anchors", ANCHORS, "--threshold", "0.5", "--nms", "0.2", "--json"]) == 0
    boxes = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["boxes"]
    return {b["label"]: (int(b["x"]), int(b["y"]), int(b["w"]), int(b["h"])) for b in boxes}


def is_color(px, color, tol=40):
    return np.all(np.abs(px.astype(int) - np.array(color)) <= tol, axis=-1)


def green_share(rgb, xs, ys):
    """Share of the pixels rgb[ys, xs] (clipped to the frame) that are the box green."""
    h, w = rgb.shape[:2]
    xs = [x for x in xs if 0 <= x < w]
    ys = [y for y in ys if 0 <= y < h]
    if not xs or not ys:
        return 0.0
    return float(is_color(rgb[np.ix_(ys, xs)], GREEN).mean())


def tab_at(rgb, label, x, y):
    """True when the app's label tab for `label` starts at (x, y): "<label> 0." in black on the green strip.
    Another box's edge may cross a tab drawn before it (green over some ink); black where the font has no ink
    means another text."""
    mask, mx, my = text_mask(label + " 0.", 1.0, 0, 2, True)
    top, left = y + my, x + 2 + mx
    region = rgb[top:top + mask.shape[0], left:left + mask.shape[1]]
    if top < 0 or left < 0 or region.shape[:2] != mask.shape:
        return False
    return (is_color(region[mask], BLACK).mean() >= 0.7 and is_color(region[~mask], GREEN).mean() >= 0.9
            and not is_color(region[~mask], BLACK, 10).any())


def drawn_box(rgb, label, x, y, w, h):
    """(x, y, w, h) of the box the app drew for `label` within NEAR pixels of (x, y, w, h), or None: its tab at
    the top-left corner, then its outer right column and bottom row (2-pixel green edges, mostly unbroken)."""
    for dy in range(-NEAR, NEAR + 1):
        for dx in range(-NEAR, NEAR + 1):
            bx, by = x + dx, y + dy
            if not tab_at(rgb, label, bx, by):
                continue
            rows, cols = range(by + 14, by + h - NEAR), range(bx + 2, bx + w - NEAR)
            right = [c for c in range(x + w - 1 - NEAR, x + w + NEAR) if green_share(rgb, [c], rows) >= 0.5]
            bottom = [r for r in range(y + h - 1 - NEAR, y + h + NEAR) if green_share(rgb, cols, [r]) >= 0.5]
            if right and bottom and green_share(rgb, [bx], rows) >= 0.5:
                return bx, by, max(right) - bx + 1, max(bottom) - by + 1
    return None


def title(rgb, text):
    return says(rgb, text, 4, 2, YELLOW)


def newest_frame(folder, since):
    """The last LCD frame the board wrote after time `since` (frame_NNN.png restarts at each power-on), or None."""
    done = [p for p in folder.glob("frame_*.png") if p.stat().st_mtime > since]
    if not done:
        return None
    try:
        return np.asarray(Image.open(max(done, key=lambda p: p.stat().st_mtime)).convert("RGB"))
    except OSError:
        return None        # being written


def wait_for_mode(board, folder, since, text, timeout):
    """The first new frame whose title is `text` (the app's mode and model), or None after timeout seconds."""
    seen = []

    def look():
        rgb = newest_frame(folder, since)
        if rgb is not None and title(rgb, text):
            seen.append(rgb)
        return bool(seen)
    return seen[0] if board.wait_for(look, timeout) else None


class Console:
    """The board's serial line as the app prints to it (its own log), read in the background."""

    def __init__(self, port):
        import serial
        self.s = serial.Serial(port, 115200, timeout=0.1)
        self.text = ""
        self._run = True
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        while self._run:
            try:
                self.text += self.s.read(4096).decode("utf-8", "replace")
            except Exception:
                return

    def close(self):
        self._run = False
        self.t.join(2)
        self.s.close()


# Where the three boxes are in k210_lcd_photo.png (a photo of a K210's LCD running this model on this image), in
# the photo's pixels, as (left, top, right, bottom): a start for finding each green edge there.
PHOTO_BOXES = {"bicycle": (77, 98, 471, 383), "car": (333, 88, 432, 160), "dog": (80, 158, 242, 434)}


def photo_edges(photo):
    """{label: [left, right, top, bottom]}: the centre of each green edge the board drew, in photo pixels, over the
    middle third of the edge (the photo is slightly rotated; other boxes cross the ends)."""
    im = np.asarray(Image.open(photo).convert("RGB")).astype(int)
    r, g, b = im[..., 0], im[..., 1], im[..., 2]
    green = (g > 150) & (g - r > 60) & (g - b > 60)
    edges = {}
    for label, (x1, y1, x2, y2) in PHOTO_BOXES.items():
        found = []
        for vertical, at, a, b in ((True, x1, y1, y2), (True, x2, y1, y2), (False, y1, x1, x2), (False, y2, x1, x2)):
            centres = []
            for k in range((2 * a + b) // 3, (a + 2 * b) // 3):
                line = green[k, at - 8:at + 9] if vertical else green[at - 8:at + 9, k]
                if line.any():
                    centres.append(at - 8 + np.nonzero(line)[0].mean())
            found.append(float(np.mean(centres)))
        edges[label] = found
    return edges


def check_against_board_photo(drawn, photo):
    """The app's boxes are the board's, up to where the camera stood: one scale and offset per axis takes the
    photo's edges onto the app's within 3 pixels (the LCD fills most of the 640-pixel-wide photo)."""
    edges = photo_edges(photo)
    for axis, (i, j) in (("x", (0, 1)), ("y", (2, 3))):
        seen, app = [], []
        for label, (x, y, w, h) in drawn.items():
            lo, size = (x, w) if axis == "x" else (y, h)
            seen += [edges[label][i], edges[label][j]]
            app += [lo + 0.5, lo + size - 1.5]          # the centres of the app's 2-pixel edges
        scale, offset = np.polyfit(seen, app, 1)
        misfit = np.abs(scale * np.array(seen) + offset - np.array(app)).max()
        assert 0.5 < scale < 0.62 and misfit <= NEAR, (axis, scale, offset, misfit)


def check_frame(rgb, want):
    """The detector frame shows each of the fixture's boxes, labelled, within NEAR pixels; and where the README
    says the board put them: bicycle across the middle, car top right, dog in the lower left half."""
    assert title(rgb, "DET yolo")
    drawn = {}
    for label, box in want.items():
        drawn[label] = drawn_box(rgb, label, *box)
        assert drawn[label] is not None, "no %s box drawn near %s" % (label, box)
        assert all(abs(a - b) <= NEAR for a, b in zip(drawn[label], box)), (label, drawn[label], box)
    centre = {k: (x + w / 2, y + h / 2) for k, (x, y, w, h) in drawn.items()}
    assert 100 < centre["bicycle"][0] < 220 and drawn["bicycle"][2] > 160           # most of the frame's middle
    assert centre["car"][0] > 160 and centre["car"][1] < 120                          # top right
    assert centre["dog"][0] < 160 and centre["dog"][1] > 120                          # left half, lower
    return drawn


def detector_frame(b, frames, since):
    """Once the app runs again (a classifier frame after `since`, a time after the last reset: a press before it
    would be BOOT held at start-up, safe mode), press BOOT: the first detector frame, and what the app printed on
    the serial line meanwhile."""
    console = Console(b.port)      # closed again before anything else uses the port
    try:
        assert wait_for_mode(b, frames, since, "CLS digits", 120) is not None, (b.state / "board.log").read_text()
        assert cli(["board", "press", "--state", str(b.state)]) == 0
        rgb = wait_for_mode(b, frames, since, "DET yolo", 180)
    finally:
        console.close()
    assert rgb is not None, console.text
    return rgb, console.text


def check_log(text):
    assert "loading yolo" in text and "Traceback" not in text and "error" not in text.lower(), text


@pytest.mark.slow
def test_model_add_deploy_and_the_app_shows_the_dog_boxes(tmp_path, capsys):
    """What a user types, in order; the app's LCD and its log on the serial line are what is checked. Then a
    vendor's .kfpkg holding the same model elsewhere goes through `flash write --kfpkg` on the same board: the
    app loads it from its new place and shows the same boxes."""
    want = expected_boxes(capsys)
    assert sorted(want) == ["bicycle", "car", "dog"]
    yolo = fixture_file("nncase-yolo20", "yolo.kmodel")
    photo = fixture_file("nncase-yolo20", "k210_lcd_photo.png")
    models = tmp_path / "my-models"
    assert cli(["model", "add", str(yolo), "--kind", "detector", "--labels", VOC, "--anchors", ANCHORS,
                "--threshold", "0.5", "--nms", "0.2", "--models", str(models)]) == 0

    frames = tmp_path / "frames"
    b = VirtualBoardProcess(tmp_path / "board", ["--camera", str(fixture_file("nncase-yolo20", "dog.bmp")),
                                                 "--frames", str(frames)])
    try:
        assert cli(["deploy", "--port", b.port, "--models", str(models), "--detector", "yolo",
                    "--out", str(tmp_path / "deploy")]) == 0
        # the user's folder holds only a detector: deploy adds the demo classifier as BOOT's other mode
        assert "classifier: digits, the demo" in capsys.readouterr().out
        rgb, log = detector_frame(b, frames, time.time())
        Image.fromarray(rgb).save(tmp_path / "detector_frame.png")   # kept by pytest, to look at on a failure
        check_log(log)
        check_against_board_photo(check_frame(rgb, want), photo)

        listing = b.state / "flash" / "models.json"
        listed = {m["name"]: m for m in json.loads(listing.read_text())["models"]}
        old = listed["yolo"]["source"]
        new_at = (old["flash"] + old["size"] + 0xFFFF) // 0x10000 * 0x10000
        pkg = vendor_kfpkg(tmp_path / "yolo20.kfpkg", [(new_at, "yolo.kmodel", yolo.read_bytes(), False)])
        assert cli(["flash", "write", "--kfpkg", str(pkg), "--port", b.port, "--out", str(tmp_path / "o")]) == 0
        assert "lists yolo at the new place" in capsys.readouterr().out
        assert json.loads(listing.read_text())["models"][1]["source"]["flash"] == new_at
        image = (b.state / "flash.bin").read_bytes()
        assert image[new_at:new_at + old["size"]] == yolo.read_bytes()
        rgb, log = detector_frame(b, frames, time.time())   # it returns once the board is reset: the app starts
        check_log(log)
        check_frame(rgb, want)
    finally:
        b.close()
