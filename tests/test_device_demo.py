"""The shipped demo models (models/*.json) in the real device app: the classifier reads make sim's printed digits
through its framing crop, the detector finds the astronaut's face (the pipeline's labelled frame) on the full
frame."""
import pytest

from conftest import ROOT
from host_tools import manifest as mf
from host_tools.sim import Board, Session
from host_tools.pipeline import faces
from host_tools.sim.camera import default_sources, digit_glyph
from host_tools.sim.provision import demo_manifests, install_app, install_models


@pytest.fixture(scope="module")
def demo():
    by_kind = {}
    for p in demo_manifests(ROOT / "models"):
        by_kind.setdefault(mf.load(p).kind, p)
    assert set(by_kind) == {"classifier", "detector"}, "models/ lacks a demo classifier + detector: make models"
    return by_kind


def frames_by_scene(tmp_path, demo, switch_at_ms, until_ms):
    """Run the app frame by frame; returns [(scene name, mode kind, result)]."""
    cls = mf.load(demo["classifier"])
    digits = default_sources(digit_glyph(cls.input["w"], cls.input["h"], cls.framing))[:4]   # make sim's digits
    scenes = digits + [("astronaut", faces.astronaut_frame())] * 4      # the frame the pipeline labelled
    board = Board(flash_root=tmp_path / "flash", camera=scenes, hold_ms=500)
    install_app(board, ROOT / "device")
    install_models(board, [demo["classifier"], demo["detector"]])
    s = Session(board)
    s.exec("import lcd, camera\nlcd.init()\ncamera.start()")    # boot.py without its safe-mode window
    s.exec("import app, time\na = app.App()\na.start()")
    a = s.main_globals["a"]
    seen = []
    while board.clock.ms < until_ms:
        if board.clock.ms >= switch_at_ms and a.mode == 0:
            s.exec("a.enter(1)")
        scene = board.camera.sources[board.camera.index_at(board.clock.ms + 20)][0]
        s.exec("a.frame()")
        seen.append((scene, a.slots[a.mode].kind, a.result))
    assert a.notice is None, a.notice
    return seen


@pytest.mark.slow
def test_demo_classifier_reads_the_digits_and_detector_finds_the_face(tmp_path, demo):
    seen = frames_by_scene(tmp_path, demo, switch_at_ms=2000, until_ms=3500)
    digits = [(scene, r) for scene, kind, r in seen if kind == "classifier" and scene.startswith("digit")]
    assert len(digits) > 40 and {scene for scene, _ in digits} == {"digit0", "digit1", "digit2", "digit3"}
    right = sum(1 for scene, r in digits if r[0] == scene[len("digit"):])
    assert right >= 0.8 * len(digits), digits[::10]
    found = [r for scene, kind, r in seen if kind == "detector" and scene == "astronaut"]
    assert len(found) > 10
    truth = faces.ASTRONAUT_FACE

    def on_the_face(box):
        name, score, x, y, w, h = box
        return name == "face" and truth.x0 <= x + w / 2 <= truth.x1 and truth.y0 <= y + h / 2 <= truth.y1
    assert sum(1 for r in found if any(on_the_face(b) for b in r)) >= 0.8 * len(found), found[:3]
