"""`kmodel run --output-dir DIR`: one <input>.bin per input as `ncc infer` writes it (float32 NCHW, outputs one
after the other), holding exactly the values `kmodel run` prints."""
import shutil

import numpy as np

from conftest import fixture_file
from host_tools.__main__ import main as cli
from host_tools.kmodel import infer_bin, load, run


def test_iris_numbers_give_the_printed_values(tmp_path, capsys):
    iris = fixture_file("nncase-iris", "iris.kmodel")
    assert cli(["kmodel", "run", str(iris), "--input", "5.1,3.8,1.9,0.4", "--output-dir", str(tmp_path / "o")]) == 0
    printed = [float(v) for v in capsys.readouterr().out.splitlines()[1].split(",")]
    raw = (tmp_path / "o" / "input0.bin").read_bytes()
    assert len(raw) == 12
    got = np.frombuffer(raw, "<f4")
    assert np.allclose(got, printed, atol=5e-7)
    assert np.allclose(got, [16.077795, 5.607656, -2.071745], atol=1e-4)    # the nncase example's numbers


def test_a_folder_gives_one_bin_per_image_equal_to_the_emulator(tmp_path):
    dog = fixture_file("nncase-yolo20", "dog.bmp")
    photos = tmp_path / "photos"
    photos.mkdir()
    shutil.copy(dog, photos / "dog.bmp")
    shutil.copy(dog, photos / "dog2.bmp")
    yolo = fixture_file("nncase-yolo20", "yolo.kmodel")
    assert cli(["kmodel", "run", str(yolo), "--input", str(photos), "--output-dir",
                str(tmp_path / "o")]) == 0
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["dog.bin", "dog2.bin"]
    m = load(yolo)
    planar = fixture_file("nncase-yolo20", "dog_rgb888_planar_320x240.bin").read_bytes()
    want = run(m, np.frombuffer(planar, np.uint8).reshape(3, 240, 320))
    got = infer_bin.read(tmp_path / "o" / "dog.bin", [o.shape for o in want])
    assert got[0].shape == (125, 7, 10) and got[0].dtype == np.float32
    assert np.array_equal(got[0], want[0].astype(np.float32))
    assert (tmp_path / "o" / "dog.bin").read_bytes() == (tmp_path / "o" / "dog2.bin").read_bytes()


def test_output_dir_keeps_other_files_unless_forced(tmp_path, capsys):
    iris = fixture_file("nncase-iris", "iris.kmodel")
    (tmp_path / "o").mkdir()
    (tmp_path / "o" / "notes.txt").write_text("mine")
    args = ["kmodel", "run", str(iris), "--input", "5.1,3.8,1.9,0.4", "--output-dir", str(tmp_path / "o")]
    assert cli(args) == 1
    assert "--output-dir %s: holds notes.txt" % (tmp_path / "o") in capsys.readouterr().err
    assert cli(args + ["--force"]) == 0
    assert (tmp_path / "o" / "notes.txt").read_text() == "mine" and (tmp_path / "o" / "input0.bin").is_file()
