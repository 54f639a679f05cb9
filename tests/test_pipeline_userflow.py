"""`train --data DIR`: one command from a folder of photos to kmodel + manifest + report, as a new user runs it;
a useless model exits 3; bad input gets one line naming what is wrong and leaves nothing half written."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from host_tools.__main__ import main
from host_tools.pipeline import userlike

ROOT = Path(__file__).resolve().parents[1]
PROGRESS = re.compile(r"^[^:]+:\s+\d+%\|")       # a tqdm bar's line
TF_NOISE = ("I0000", "W0000", "oneDNN", "absl::InitializeLog", "XNNPACK", "fully_quantize", "Saved artifact",
            "TensorSpec")


def colour_photos(root, per_class=20, seed=0, classes=(("red", 0), ("blue", 2))):
    """Phone-like JPEGs of two colours of thing on a textured background, odd sizes and aspects."""
    rng = np.random.default_rng(seed)
    for name, ch in classes:
        for i in range(per_class):
            w, h = int(rng.integers(60, 140)), int(rng.integers(60, 140))
            a = rng.integers(0, 90, size=(h, w, 3), dtype=np.uint8)
            a[h // 4:3 * h // 4, w // 4:3 * w // 4, ch] = rng.integers(170, 255)
            (root / name).mkdir(parents=True, exist_ok=True)
            Image.fromarray(a).save(root / name / ("%s_%02d.jpg" % (name, i)), quality=90)
    return root


def _run(args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "host_tools"] + args, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900)


@pytest.mark.slow
def test_one_command_from_folder_to_kmodel_manifest_and_report(tmp_path):
    data = colour_photos(tmp_path / "my_things")
    r = _run(["train", "--data", str(data), "--epochs", "4"], cwd=tmp_path)       # a fresh process, like a user
    assert r.returncode == 0, r.stderr[-3000:]
    noise = [ln for ln in (r.stdout + r.stderr).splitlines() if any(n in ln for n in TF_NOISE)]
    assert not noise, noise[:5]                      # TensorFlow's own lines are hidden without --verbose
    # a progress bar on each long stage: loading the photos, the epochs, the kmodel on the emulator
    bars = {m.group(1) for m in re.finditer(r"(?:^|\r)([^:\r\n]+):\s+\d+%\|", r.stderr, re.M)}
    assert {"photos", "my_things", "kmodel on validation"} <= bars, r.stderr[-2000:]
    out = tmp_path / "out" / "train" / "my_things"
    assert "-> out/train/my_things" in r.stdout and "wrote out/train/my_things" in r.stdout
    for f in ("my_things.keras", "my_things_int8.tflite", "my_things.kmodel", "my_things.json",
              "my_things_report.md", "my_things_report.json", "my_things_curves.png", "my_things_confusion.png"):
        assert (out / f).is_file(), f
    assert not list(out.glob(".*"))                  # no staging folder left behind
    rep = json.loads((out / "my_things_report.json").read_text())
    assert (rep["kind"], rep["metric"], rep["useful"]) == ("classifier", "accuracy", True)
    assert set(rep["val"]) == {"float", "int8", "kmodel"} and rep["val"]["kmodel"] >= 0.9
    assert rep["photos"]["val"] == {"blue": 4, "red": 4} and rep["labels"] == ["blue", "red"]
    assert "| 8 photos |" in (out / "my_things_report.md").read_text()
    from host_tools import manifest
    man = manifest.load(out / "my_things.json")
    assert (man.kind, man.labels, man.framing, man.input["w"]) == ("classifier", ["blue", "red"], "crop", 64)

    # kmodel run on the validation photos gives, photo by photo, what the report measured on the emulator
    val_dir = tmp_path / "val"
    val_dir.mkdir()
    for i, p in enumerate(rep["val_photos"]):
        (val_dir / ("%02d_%s" % (i, Path(p).name))).write_bytes(Path(p).read_bytes())
    r = _run(["kmodel", "run", str(out / "my_things.kmodel"), "--input", str(val_dir), "--json"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(lines) == 8 and all(set(x) == {"input", "top", "boxes"} for x in lines)
    right = [x["top"][0]["label"] == Path(x["input"]).name.split("_")[1] for x in lines]
    assert np.mean(right) == pytest.approx(rep["val"]["kmodel"])


@pytest.mark.slow
def test_random_labels_exit_3_and_no_manifest(tmp_path, capsys):
    data = userlike.shuffled(colour_photos(tmp_path / "photos"), tmp_path / "random")
    out = tmp_path / "o"
    out.mkdir()
    for f in ("random.json", "random.kmodel"):       # an earlier run's: they no longer match what this run writes
        (out / f).write_text("earlier run")
    assert main(["train", "--data", str(data), "--epochs", "3", "--out", str(out)]) == 3
    err = capsys.readouterr().err
    assert "the model is no better than chance" in err and "No kmodel or manifest written" in err
    assert not (out / "random.json").exists() and not (out / "random.kmodel").exists()
    rep = json.loads((out / "random_report.json").read_text())
    assert rep["useful"] is False and rep["files"]["manifest"] is None
    assert "Not usable" in (out / "random_report.md").read_text()


def test_bad_input_gets_one_line_naming_it_and_nothing_is_written(tmp_path, capsys):
    out = tmp_path / "o"

    def fails(args, *words):
        assert main(["train"] + args + ["--out", str(out)]) == 1
        err = [ln for ln in capsys.readouterr().err.splitlines() if not PROGRESS.match(ln) and ln.strip()]
        assert len(err) == 1 and all(w in err[0] for w in words), err

    fails(["--data", str(tmp_path / "nope")], "nope", "no such folder")
    one = tmp_path / "one"
    colour_photos(one, 3, classes=(("red", 0),))
    fails(["--data", str(one)], "only one class folder (red)")
    two = colour_photos(tmp_path / "two", 3)
    (two / "red" / "red_00.jpg").write_bytes(b"\xff\xd8 truncated")
    fails(["--data", str(two)], "red_00.jpg", "cannot read image")
    (two / "red" / "red_00.jpg").unlink()
    fails(["--data", str(two), "--weights", str(tmp_path / "missing.h5")], "missing.h5", "no such file")
    fails(["--data", str(two), "--val", "1.5"], "--val")
    assert not out.exists()


def test_interrupted_run_leaves_no_manifest_or_staging_files(tmp_path, capsys, monkeypatch):
    from host_tools.pipeline import evaluate
    data = colour_photos(tmp_path / "d", 6)
    out = tmp_path / "o"

    def interrupt(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(evaluate, "classifier_figures", interrupt)     # after the kmodel is compiled
    assert main(["train", "--data", str(data), "--epochs", "1", "--out", str(out)]) == 130
    assert "interrupted" in capsys.readouterr().err
    assert not out.exists()                                         # nothing of the run, not even the folder
    # an earlier run's files stay as they were: no new tflite beside an old kmodel and report
    out.mkdir()
    earlier = {f: ("earlier " + f).encode() for f in ("d.keras", "d_int8.tflite", "d.kmodel", "d.json",
                                                       "d_report.json", "d_curves.png")}
    for f, b in earlier.items():
        (out / f).write_bytes(b)
    assert main(["train", "--data", str(data), "--epochs", "1", "--out", str(out)]) == 130
    assert {p.name: p.read_bytes() for p in out.iterdir()} == earlier


@pytest.mark.slow
def test_train_under_mirrored_strategy_then_quantize_a_class_folder(tmp_path, capsys):
    data = colour_photos(tmp_path / "data", 6)
    out = tmp_path / "out"
    # one epoch on 12 photos proves nothing (exit 3); what matters here is that the strategy runs end to end
    assert main(["train", "--data", str(data), "--epochs", "1", "--strategy", "mirrored", "--name", "rb",
                 "--out", str(out)]) in (0, 3)
    rep = json.loads((out / "rb_report.json").read_text())
    assert rep["strategy"] == "mirrored" and rep["epochs_run"] == 1
    assert main(["quantize", str(out / "rb.keras"), "--data", str(data), "--out", str(tmp_path / "q.tflite")]) == 0
    assert (tmp_path / "q.tflite").stat().st_size > 1000
    assert "int8" in capsys.readouterr().out
