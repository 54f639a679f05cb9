"""`model add`: other people's kmodels get the manifest our own get, and then the planner, deploy, the sim and
`kmodel run` treat them like ours (nncase's 20-class YOLO on its dog photo: bicycle, car, dog)."""
import json

import pytest

from conftest import ROOT, fixture_file
from host_tools import manifest as mf
from host_tools.__main__ import main as cli
from host_tools.sim import Board, Session
from host_tools.sim.provision import VOC, YOLO20_ANCHORS, install_app, install_models

ANCHORS = ",".join(map(str, YOLO20_ANCHORS))
START = 1300          # board ms when the app runs (tests/test_device_app.py)


def add(tmp_path, *extra):
    return cli(["model", "add"] + [str(x) for x in extra] + ["--models", str(tmp_path / "models")])


@pytest.fixture
def voc(tmp_path):
    p = tmp_path / "voc.txt"
    p.write_text("\n".join(VOC) + "\n")
    return p


def test_yolo20_manifest_comes_from_the_file_and_kmodel_run_uses_it(tmp_path, voc, capsys):
    yolo = fixture_file("nncase-yolo20", "yolo.kmodel")
    assert add(tmp_path, yolo, "--kind", "detector", "--anchors", ANCHORS, "--nms", "0.2", "--labels", voc,
               "--name", "yolo20") == 0
    out = capsys.readouterr().out
    assert "input 320x240x3, outputs 125x7x10" in out and "5 anchors, 20 classes" in out
    m = mf.load(tmp_path / "models" / "yolo20.json")
    assert (m.kind, m.kmodel, m.kmodel_version, m.size) == ("detector", "yolo20.kmodel", 3, yolo.stat().st_size)
    assert m.input == {"w": 320, "h": 240, "c": 3, "format": "planar_u8"}
    assert m.outputs == [{"shape": [125, 7, 10], "type": "f"}]
    assert m.labels == VOC and m.anchors == YOLO20_ANCHORS and (m.threshold, m.nms) == (0.5, 0.2)
    assert m.memory["main_mem"] == 43752 and m.load == "ram" and m.fits == {"full": True, "minimum": True}
    assert (tmp_path / "models" / "yolo20.kmodel").read_bytes() == yolo.read_bytes()
    # kmodel run finds the manifest beside the copy: anchors, labels and nms from it
    dog = fixture_file("nncase-yolo20", "dog.bmp")
    assert cli(["kmodel", "run", str(tmp_path / "models" / "yolo20.kmodel"), "--input", str(dog), "--json"]) == 0
    boxes = json.loads(capsys.readouterr().out)["boxes"]
    assert sorted(b["label"] for b in boxes) == ["bicycle", "car", "dog"]


def test_a_classifier_and_a_float_model(tmp_path, capsys):
    assert add(tmp_path, fixture_file("maixpy-mnist", "mnist.kmodel"), "--kind", "classifier",
               "--labels", ",".join("0123456789")) == 0
    m = mf.load(tmp_path / "models" / "mnist.json")
    assert m.input == {"w": 28, "h": 28, "c": 1, "format": "planar_u8"} and m.labels == list("0123456789")
    assert add(tmp_path, fixture_file("nncase-iris", "iris.kmodel"), "--kind", "classifier",
               "--labels", "setosa,versicolor,virginica") == 0
    assert "float input" in capsys.readouterr().out
    m = mf.load(tmp_path / "models" / "iris.json")
    assert m.input["format"] == "float" and m.outputs == [{"shape": [3, 1, 1], "type": "f"}]
    assert cli(["kmodel", "run", str(tmp_path / "models" / "iris.kmodel"), "--input", "5.1,3.8,1.9,0.4",
                "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["top"][0]["label"] == "setosa"


@pytest.mark.parametrize("extra, message", [
    (("--kind", "detector", "--anchors", "1,2,3,4"),
     "--anchors: 2 anchors do not fit the output's 125 channels (YOLOv2 needs anchor_num x (5 + classes) "
     "channels; 125 channels fit 1 or 5 anchors)"),
    (("--kind", "detector", "--anchors", "1,2,3"), "--anchors: a detector needs w,h pairs"),
    (("--kind", "detector"), "--anchors: a detector needs w,h pairs"),
    (("--kind", "detector", "--anchors", ANCHORS, "--labels", "cat,dog"),
     "--labels: 2 labels, but 5 anchors in 125 channels mean 20 classes"),
    (("--kind", "classifier", "--anchors", ANCHORS), "--anchors: only a detector has anchors"),
    (("--kind", "detector", "--anchors", ANCHORS, "--threshold", "1.5"), "field 'threshold' must be a number in"),
])
def test_facts_the_file_contradicts_are_refused_and_nothing_is_written(tmp_path, capsys, extra, message):
    assert add(tmp_path, fixture_file("nncase-yolo20", "yolo.kmodel"), *extra) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []


def test_bad_files(tmp_path, capsys):
    assert add(tmp_path, tmp_path / "nope.kmodel", "--kind", "classifier") == 1
    assert "nope.kmodel: no such file" in capsys.readouterr().err
    junk = tmp_path / "junk.kmodel"
    junk.write_bytes(b"\x07\x00\x00\x00" + bytes(60))
    assert add(tmp_path, junk, "--kind", "classifier") == 1
    assert "junk.kmodel" in capsys.readouterr().err
    assert add(tmp_path, fixture_file("maixpy-mnist", "mnist.kmodel"), "--kind", "classifier",
               "--name", "a/b") == 2
    assert "--name 'a/b'" in capsys.readouterr().err
    assert not (tmp_path / "models").exists() or list((tmp_path / "models").iterdir()) == []


def test_added_models_go_through_the_planner_and_the_app_shows_the_dog_boxes(tmp_path, voc, capsys):
    """model add -> flash plan (deploy's planner) -> the app on the virtual board, camera on dog.bmp."""
    assert add(tmp_path, fixture_file("maixpy-mnist", "mnist.kmodel"), "--kind", "classifier") == 0
    assert add(tmp_path, fixture_file("nncase-yolo20", "yolo.kmodel"), "--kind", "detector", "--anchors",
               ANCHORS, "--nms", "0.2", "--labels", voc, "--name", "yolo20") == 0
    models = tmp_path / "models"
    assert cli(["flash", "plan", "--models", str(models), "--out", str(tmp_path / "deploy")]) == 0
    plan = json.loads((tmp_path / "deploy" / "flash-plan.json").read_text())
    assert [r["name"] for r in plan["models"]] == ["mnist", "yolo20"]
    device = json.loads((tmp_path / "deploy" / "models.json").read_text())["models"]
    # a labels file given to model add goes onto the board: models.json names it, the app reads it
    assert device[1]["labels"] == "yolo20_labels.txt" and device[1]["anchors"] == YOLO20_ANCHORS
    assert device[0]["labels"] == []

    board = Board(flash_root=tmp_path / "flash", camera=[fixture_file("nncase-yolo20", "dog.bmp")])
    install_app(board, ROOT / "device")
    install_models(board, [models / "mnist.json", models / "yolo20.json"])
    board.press(at_ms=START + 1200)
    s = Session(board)
    s.rt.stop_check = lambda: "stop" if board.clock.ms >= START + 2500 else None
    assert s.boot().error is None
    app = s.device_modules["app"].current
    assert (board.flash_root / "yolo20_labels.txt").read_text().splitlines() == VOC
    assert app.manager.entry["name"] == "yolo20"
    assert sorted(b[0] for b in app.result) == ["bicycle", "car", "dog"]


def boot_with_labels(tmp_path, voc, spoil=None, press=True):
    assert add(tmp_path, fixture_file("maixpy-mnist", "mnist.kmodel"), "--kind", "classifier",
               "--labels", ",".join("0123456789")) == 0
    assert add(tmp_path, fixture_file("nncase-yolo20", "yolo.kmodel"), "--kind", "detector", "--anchors",
               ANCHORS, "--nms", "0.2", "--labels", voc, "--name", "yolo20") == 0
    models = tmp_path / "models"
    board = Board(flash_root=tmp_path / "flash", camera=[fixture_file("nncase-yolo20", "dog.bmp")])
    install_app(board, ROOT / "device")
    install_models(board, [models / "mnist.json", models / "yolo20.json"])
    if spoil:
        spoil(board.flash_root)
    if press:
        board.press(at_ms=START + 1000)
    s = Session(board)
    s.rt.stop_check = lambda: "stop" if board.clock.ms >= START + 2200 else None
    r = s.boot()
    return board, s, r, s.device_modules["app"].current


def test_a_missing_labels_file_is_shown_and_the_classifier_keeps_running(tmp_path, voc):
    board, s, r, app = boot_with_labels(tmp_path, voc, lambda root: (root / "yolo20_labels.txt").unlink())
    assert r.error is None
    text = board.console_text()
    assert "yolo20: labels file yolo20_labels.txt: cannot read ([Errno 2] ENOENT)" in text
    assert "loading yolo20" not in text                    # the detector is never loaded without its labels
    assert app.manager.entry["name"] == "mnist" and app.frames > 10


def test_labels_file_lines_with_blank_and_crlf(tmp_path, voc):
    def crlf(root):
        (root / "yolo20_labels.txt").write_bytes(("\r\n".join(VOC) + "\r\n\r\n").encode())
    board, s, r, app = boot_with_labels(tmp_path, voc, crlf)
    assert r.error is None and app.manager.entry["name"] == "yolo20"
    assert app.manager.entry["labels"] == VOC
    assert sorted(b[0] for b in app.result) == ["bicycle", "car", "dog"]


def test_a_labels_file_that_disagrees_with_the_manifest_is_refused(tmp_path, voc, capsys):
    assert add(tmp_path, fixture_file("nncase-yolo20", "yolo.kmodel"), "--kind", "detector", "--anchors",
               ANCHORS, "--labels", voc, "--name", "yolo20") == 0
    (tmp_path / "models" / "yolo20_labels.txt").write_text("cat\ndog\n")
    board = Board(flash_root=tmp_path / "flash")
    with pytest.raises(mf.ManifestError, match="yolo20_labels.txt does not hold the manifest's 20 labels"):
        install_models(board, [tmp_path / "models" / "yolo20.json"])


@pytest.mark.slow
def test_deploy_puts_added_models_and_their_labels_file_on_the_board(tmp_path, voc, capsys):
    """model add -> deploy (real kflash and mpremote) to the virtual Maix Bit in its own process."""
    from test_deploy_support import VirtualBoardProcess, pattern
    assert add(tmp_path, fixture_file("maixpy-mnist", "mnist.kmodel"), "--kind", "classifier") == 0
    assert add(tmp_path, fixture_file("nncase-yolo20", "yolo.kmodel"), "--kind", "detector", "--anchors",
               ANCHORS, "--nms", "0.2", "--labels", voc, "--name", "yolo20") == 0
    fw = tmp_path / "maixpy.bin"
    fw.write_bytes(pattern(300_000, 7))
    b = VirtualBoardProcess(tmp_path / "board", ["--frames", str(tmp_path / "frames"), "--max-frames", "1"])
    try:
        assert cli(["deploy", "--port", b.port, "--models", str(tmp_path / "models"), "--firmware", str(fw),
                    "--out", str(tmp_path / "deploy")]) == 0
        flash_files = b.state / "flash"
        assert (flash_files / "yolo20_labels.txt").read_text().splitlines() == VOC
        listed = json.loads((flash_files / "models.json").read_text())["models"]
        assert [(m["name"], m["labels"]) for m in listed] == [("mnist", []), ("yolo20", "yolo20_labels.txt")]
        image = (b.state / "flash.bin").read_bytes()
        yolo = fixture_file("nncase-yolo20", "yolo.kmodel").read_bytes()
        at = listed[1]["source"]["flash"]
        assert image[at:at + len(yolo)] == yolo
        assert b.wait_for(lambda: (tmp_path / "frames" / "frame_000.png").exists(), 120), \
            (b.state / "board.log").read_text()
    finally:
        b.close()


def test_a_big_endian_kmodel_is_swapped_back(tmp_path, capsys):
    """A model stored for kpu.load_flash (MaixPy's model_le2be.py form) is added as the little-endian kmodel."""
    from host_tools.k210.bigendian import to_big_endian
    le = fixture_file("maixpy-mnist", "mnist.kmodel").read_bytes()
    be = tmp_path / "mnist_be.kmodel"
    be.write_bytes(to_big_endian(le + bytes(-len(le) % 4)))
    assert add(tmp_path, be, "--kind", "classifier", "--name", "mnist") == 0
    assert (tmp_path / "models" / "mnist.kmodel").read_bytes()[:len(le)] == le
    m = mf.load(tmp_path / "models" / "mnist.json")
    assert m.input == {"w": 28, "h": 28, "c": 1, "format": "planar_u8"} and m.kmodel_version == 3


@pytest.mark.parametrize("bad", ["../labels.txt", "main.py", 3])
def test_a_manifest_labels_file_must_be_a_txt_beside_it(tmp_path, bad):
    assert add(tmp_path, fixture_file("maixpy-mnist", "mnist.kmodel"), "--kind", "classifier") == 0
    d = json.loads((tmp_path / "models" / "mnist.json").read_text())
    d["labels_file"] = bad
    with pytest.raises(mf.ManifestError, match="field 'labels_file' must be a .txt file name beside the manifest"):
        mf.validate(d, "mnist.json")


def test_a_v4_kmodel_is_added_for_the_full_build_only(tmp_path, capsys):
    """nncase v0.2's V4 yolo20: MaixPy's full builds load V4, the minimum build does not."""
    assert add(tmp_path, fixture_file("nncase-v4-yolo20", "yolo.kmodel"), "--kind", "detector", "--anchors",
               ANCHORS, "--nms", "0.2", "--name", "yolo20v4") == 0
    m = mf.load(tmp_path / "models" / "yolo20v4.json")
    assert m.kmodel_version == 4 and m.fits == {"full": True, "minimum": False}
    assert m.input == {"w": 320, "h": 240, "c": 3, "format": "planar_u8"}
    dog = fixture_file("nncase-yolo20", "dog.bmp")
    assert cli(["kmodel", "run", str(tmp_path / "models" / "yolo20v4.kmodel"), "--input", str(dog), "--json"]) == 0
    boxes = json.loads(capsys.readouterr().out.strip().splitlines()[-1])["boxes"]
    assert {"1", "6"} <= {b["label"] for b in boxes}      # bicycle and car (no labels given: class numbers)
