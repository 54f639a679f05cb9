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
    assert device[1]["labels"] == VOC and device[1]["anchors"] == YOLO20_ANCHORS

    board = Board(flash_root=tmp_path / "flash", camera=[fixture_file("nncase-yolo20", "dog.bmp")])
    install_app(board, ROOT / "device")
    install_models(board, [models / "mnist.json", models / "yolo20.json"])
    board.press(at_ms=START + 1200)
    s = Session(board)
    s.rt.stop_check = lambda: "stop" if board.clock.ms >= START + 2500 else None
    assert s.boot().error is None
    app = s.device_modules["app"].current
    assert app.manager.entry["name"] == "yolo20"
    assert sorted(b[0] for b in app.result) == ["bicycle", "car", "dog"]
