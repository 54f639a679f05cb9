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
