"""netinfo and the `kmodel info|run` command on the real fixtures."""
import numpy as np

from conftest import fixture_file
from host_tools.__main__ import main as host_main
from host_tools.kmodel import load, netinfo

VOC = ("aeroplane,bicycle,bird,boat,bottle,bus,car,cat,chair,cow,diningtable,dog,horse,motorbike,person,"
       "pottedplant,sheep,sofa,train,tvmonitor")
ANCHORS = "1.08,1.19,3.42,4.41,6.63,11.38,9.42,5.11,16.62,10.52"


def test_netinfo_yolo20():
    m = load(fixture_file("nncase-yolo20", "yolo.kmodel"))
    info = netinfo(m)
    assert len(info.layers) == 17 and info.main_mem == 43752
    l0 = info.layers[0]
    assert (l0["type"], l0["in_shape"], l0["out_shape"], l0["kernel"], l0["pool"]) == \
        ("K210_CONV", (3, 240, 320), (16, 120, 160), 3, 1)
    assert l0["weight_bytes"] == 16 * 3 * 9 + 16 * 8 + 144
    assert info.layers[13]["depthwise"]
    # parameters are nearly the whole file; the heap holds the file, main memory and nothing else (no FC)
    assert 0.99 * m.size < info.weights < m.size
    assert info.heap == m.size + 43752
    assert 0 < info.kpu_ram <= 2 * 1024 * 1024
    assert info.macs == sum(d["macs"] for d in info.layers) > 100_000_000


def test_netinfo_counts_the_fc_weight_copy_and_flags_type_21():
    m = load(fixture_file("emc-cifar10", "cifar10_output.kmodel"))
    info = netinfo(m)
    assert info.heap == m.size + m.main_mem_usage + 4 * (4096 + 1) * 16
    assert any("Maix-EMC" in n for n in info.notes)


def test_cli_info(capsys):
    assert host_main(["kmodel", "info", str(fixture_file("maixpy-mnist", "mnist.kmodel"))]) == 0
    out = capsys.readouterr().out
    assert "K210_ADD_PADDING" in out and "input 1x28x28 uint8 planar" in out and "system heap" in out


def test_cli_run_floats_with_labels(capsys):
    rc = host_main(["kmodel", "run", str(fixture_file("nncase-iris", "iris.kmodel")), "--input", "5.1,3.8,1.9,0.4",
                    "--labels", "setosa,versicolor,virginica"])
    assert rc == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[0] == "setosa" and abs(float(lines[1].split()[1]) - 16.077795) < 1e-4


def test_cli_run_yolo_image_writes_png(capsys, tmp_path):
    png = tmp_path / "boxes.png"
    rc = host_main(["kmodel", "run", str(fixture_file("nncase-yolo20", "dog.bmp")).replace("dog.bmp", "yolo.kmodel"),
                    "--input", str(fixture_file("nncase-yolo20", "dog.bmp")), "--anchors", ANCHORS,
                    "--threshold", "0.5", "--nms", "0.2", "--labels", VOC, "--png", str(png)])
    assert rc == 0
    out = capsys.readouterr().out.splitlines()
    assert sorted(ln.split()[0] for ln in out[:-1]) == ["bicycle", "car", "dog"]
    assert out[-1] == "boxes drawn: %s" % png and png.stat().st_size > 10000


def test_cli_run_raw_bin_and_bad_input(capsys, tmp_path):
    km = str(fixture_file("emc-cifar10", "cifar10_output.kmodel"))
    assert host_main(["kmodel", "run", km, "--input", str(fixture_file("emc-cifar10", "plane_input.bin"))]) == 0
    vals = [float(v) for v in capsys.readouterr().out.splitlines()[1].split(",")]
    assert int(np.argmax(vals)) == 2
    bad = tmp_path / "short.bin"
    bad.write_bytes(bytes(100))
    assert host_main(["kmodel", "run", km, "--input", str(bad)]) == 1
    assert "3072" in capsys.readouterr().err


def test_cli_reports_a_broken_file(capsys, tmp_path):
    p = tmp_path / "v5.kmodel"
    p.write_bytes(b"LDMK" + (5).to_bytes(4, "little") + bytes(40))
    assert host_main(["kmodel", "info", str(p)]) == 1
    err = capsys.readouterr().err
    assert "v5.kmodel" in err and "2015" in err


def _json_lines(capsys):
    import json
    return [json.loads(x) for x in capsys.readouterr().out.splitlines()]


def test_run_json_reads_the_manifest_and_puts_boxes_in_the_photos_pixels(tmp_path, capsys):
    from PIL import Image
    from host_tools.sim.provision import fixture_manifests
    from conftest import FIXTURES
    dog = fixture_file("nncase-yolo20", "dog.bmp")
    fixture_file("maixpy-mnist", "mnist.kmodel")
    fixture_manifests(FIXTURES, tmp_path / "m")            # kmodels with their manifests beside them
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.open(dog).save(photos / "a_dog.png")
    tall = Image.new("RGB", (320, 320), (128, 128, 128))
    tall.paste(Image.open(dog), (0, 40))      # a taller photo: the camera's 4:3 frame is its middle, the dog
    tall.save(photos / "b_dog_tall.png")
    assert host_main(["kmodel", "run", str(tmp_path / "m" / "yolo20.kmodel"), "--input", str(photos), "--json"]) == 0
    small, tall = _json_lines(capsys)
    assert small["input"].endswith("a_dog.png") and small["top"] == []
    assert sorted(b["label"] for b in small["boxes"]) == ["bicycle", "car", "dog"]   # labels, anchors from it
    assert tall["boxes"] == [dict(b, y=b["y"] + 40) for b in small["boxes"]]        # in the tall photo's pixels
    # the command line still wins over the manifest
    assert host_main(["kmodel", "run", str(tmp_path / "m" / "yolo20.kmodel"), "--input", str(dog), "--json",
                      "--threshold", "0.99"]) == 0
    assert _json_lines(capsys)[0]["boxes"] == []


def test_run_json_on_a_photo_gives_what_the_app_gets_from_its_camera(tmp_path, capsys):
    """The same photo through `kmodel run --json` and through the simulated board's camera into the device app:
    the same class with the same score, the same boxes."""
    from PIL import Image
    from conftest import FIXTURES, ROOT
    from host_tools.sim import Board, Session
    from host_tools.sim.camera import photo
    from host_tools.sim.provision import fixture_manifests, install_app, install_models
    dog = fixture_file("nncase-yolo20", "dog.bmp")
    fixture_file("maixpy-mnist", "mnist.kmodel")
    manifests = fixture_manifests(FIXTURES, tmp_path / "m")
    astronaut = photo("astronaut")
    Image.fromarray(astronaut).save(tmp_path / "astronaut.png")
    assert host_main(["kmodel", "run", str(tmp_path / "m" / "mnist.kmodel"), "--input",
                      str(tmp_path / "astronaut.png"), "--json"]) == 0
    cls = _json_lines(capsys)[0]
    assert host_main(["kmodel", "run", str(tmp_path / "m" / "yolo20.kmodel"), "--input", str(dog), "--json"]) == 0
    det = _json_lines(capsys)[0]

    board = Board(flash_root=tmp_path / "flash", hold_ms=1000,
                  camera=[("astronaut", astronaut), ("dog", np.asarray(Image.open(dog).convert("RGB")))])
    install_app(board, ROOT / "device")
    install_models(board, manifests)
    s = Session(board)
    kpu_inputs = []             # every AI buffer the app hands the KPU, by model input shape
    kpu = s.module("KPU")
    for fn in ("forward", "run_yolo2"):
        def rec(task, img, *rest, _real=getattr(kpu, fn)):
            kpu_inputs.append(np.array(img._ai, copy=True))
            return _real(task, img, *rest)
        setattr(kpu, fn, rec)
    s.exec("import lcd, camera\nlcd.init()\ncamera.start()\nimport app\na = app.App()\na.start()")
    a = s.main_globals["a"]
    seen = {}
    while board.clock.ms < 1900:
        scene = board.camera.sources[board.camera.index_at(board.clock.ms + 20)][0]
        if scene == "dog" and a.mode == 0:
            s.exec("a.enter(1)")
        s.exec("a.frame()")
        if a.result is not None:
            seen[(scene, a.slots[a.mode].kind)] = a.result
    # the same bytes reach the KPU: kmodel run's input from the photo file, the app's from its camera frame
    from host_tools.kmodel.cli import read_input
    for km, image in (("mnist.kmodel", tmp_path / "astronaut.png"), ("yolo20.kmodel", dog)):
        want = read_input(str(image), load(tmp_path / "m" / km)).x
        assert any(x.shape == want.shape and np.array_equal(x, want) for x in kpu_inputs), km
    label, score = seen[("astronaut", "classifier")]
    assert {"label": label, "score": score} == cls["top"][0]
    boxes = sorted(seen[("dog", "detector")])
    assert boxes == sorted((b["label"], b["score"], b["x"], b["y"], b["w"], b["h"]) for b in det["boxes"])
