"""device/lib/registry.py under the simulated firmware: models.json as host_tools/manifest.py writes it is read
back entry by entry, and every bad field is named in the message without stopping the other entries."""
import copy
import json

import pytest

from conftest import ROOT
from host_tools import manifest as mf
from host_tools.sim import Board, Session
from host_tools.sim.provision import install_app, VOC, YOLO20_ANCHORS


def manifest(name, kind, w, h, c, anchors=(), load="ram"):
    return mf.Manifest(name=name, kind=kind, kmodel=name + ".kmodel", kmodel_version=3, sha256="0" * 64, size=1000,
                       input={"w": w, "h": h, "c": c, "format": "planar_u8"},
                       outputs=[{"shape": [10, 1, 1], "type": "f"}], labels=VOC[:10] if kind == "classifier" else VOC,
                       memory={"main_mem": 1, "kpu_ram": 1, "weights": 1, "heap": 1}, fits={"full": True},
                       load=load, anchors=list(anchors), threshold=0.5, nms=0.2)


def entries():
    cls = mf.device_entry(manifest("digits", "classifier", 28, 28, 1), path="/sd/digits.kmodel")
    det = mf.device_entry(manifest("yolo", "detector", 320, 240, 3, YOLO20_ANCHORS, load="flash"),
                          flash_offset=0x300000)
    return [cls, det]


@pytest.fixture(scope="module")
def parse(tmp_path_factory):
    board = Board(flash_root=tmp_path_factory.mktemp("flash"))
    install_app(board, ROOT / "device")
    s = Session(board)
    s.exec("import registry")

    def run(models, raw=None):
        text = raw if raw is not None else mf.device_manifest(models)
        s.main_globals["text"] = text
        s.exec("good, bad = registry.parse(text)")
        return s.main_globals["good"], s.main_globals["bad"]
    return run


def test_reads_what_the_host_writes(parse):
    good, bad = parse(entries())
    assert bad == []
    cls, det = good
    assert (cls["name"], cls["kind"], cls["w"], cls["h"], cls["c"]) == ("digits", "classifier", 28, 28, 1)
    assert cls["source"] == {"path": "/sd/digits.kmodel"} and cls["load"] == "ram"
    assert det["source"] == {"flash": 0x300000} and det["load"] == "flash"
    assert det["anchors"] == tuple(YOLO20_ANCHORS) and det["nms"] == 0.2 and det["labels"][11] == "dog"


BAD = [
    (lambda e: e.pop("anchors"), 1, "field 'anchors' must hold an even, non-zero count"),
    (lambda e: e.update(anchors=[1.0, 2.0, 3.0]), 1, "field 'anchors' must hold an even"),
    (lambda e: e.update(kind="segmenter"), 0, "field 'kind' is 'segmenter'"),
    (lambda e: e.update(source={}), 0, "field 'source' needs exactly one of 'flash' or 'path'"),
    (lambda e: e.update(source={"flash": 0}), 1, "field 'source.flash' must be > 0"),
    (lambda e: e.update(source={"path": "/sd/digits.bin"}), 0, "field 'source.path' must name a .kmodel file"),
    (lambda e: e.update(load="flash"), 0, "field 'load' is flash but 'source' has no flash offset"),
    (lambda e: e["input"].pop("h"), 0, "input: missing field 'h'"),
    (lambda e: e["input"].update(c=4), 0, "field 'input.c' is 4"),
    (lambda e: e["input"].update(w=640), 0, "field 'input' is 640x28"),
    (lambda e: e["input"].update(format="float"), 0, "field 'input.format' is 'float'"),
    (lambda e: e["input"].update(w=True), 0, "field 'w' has the wrong type"),
    (lambda e: e.update(threshold=1.5), 1, "field 'threshold' must be a number in [0, 1]"),
    (lambda e: e.update(labels=["a", 3]), 0, "field 'labels[1]' is not a string"),
    (lambda e: e.update(labels="main.py"), 0, "field 'labels' names 'main.py': a labels file must be a .txt"),
    (lambda e: e.update(labels=7), 0, "field 'labels' has the wrong type"),
    (lambda e: e.update(outputs=[]), 0, "field 'outputs' is empty"),
    (lambda e: e.pop("name"), 0, "missing field 'name'"),
]


@pytest.mark.parametrize("spoil, which, message", BAD, ids=[b[2][:40] for b in BAD])
def test_a_bad_entry_is_named_and_the_other_still_loads(parse, spoil, which, message):
    models = copy.deepcopy(entries())
    spoil(models[which])
    good, bad = parse(models)
    assert [e["name"] for e in good] == [["digits", "yolo"][1 - which]]
    assert len(bad) == 1
    kind, text = bad[0]
    assert message in text and ("models[%d]" % which) in text
    # the mode that owns the entry shows the message, when its kind can be read
    assert kind == (models[which]["kind"] if models[which].get("kind") in mf.KINDS else None)


@pytest.mark.parametrize("raw, message", [
    ("{not json", "models.json: not valid JSON"),
    ("[1, 2]", "models.json: not a JSON object"),
    (json.dumps({"schema": 2, "models": []}), "field 'schema' is 2, this app reads 1"),
    (json.dumps({"schema": 1}), "field 'models' must be a list"),
])
def test_an_unusable_file_is_one_message(parse, raw, message):
    good, bad = parse([], raw=raw)
    assert good == [] and len(bad) == 1
    assert bad[0][0] is None and message in bad[0][1]
