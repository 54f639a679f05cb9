"""The pipeline's commands through `python -m host_tools` dispatch: check exit codes, train + quantize on folders."""
import numpy as np
import pytest
from PIL import Image

from host_tools.__main__ import main

import keras  # noqa: E402


def test_check_exit_codes_and_output(tmp_path, capsys):
    from host_tools.pipeline import arch
    good = tmp_path / "good.keras"
    arch.small_mobilenet(32, 3, widths=(8, 16)).save(good)
    bad = tmp_path / "keras_mobilenet.keras"
    keras.applications.MobileNet(input_shape=(128, 128, 3), alpha=0.25, weights=None, classes=3).save(bad)
    assert main(["check", str(good)]) == 0
    assert "K210 rules OK" in capsys.readouterr().out
    assert main(["check", str(bad)]) == 1
    out = capsys.readouterr().out
    assert "(DEPTHWISE_CONV_2D) conv_dw_2: " in out and "[rule: padding]" in out and "5 problem(s)" in out
    assert main(["check", str(tmp_path / "missing.onnx")]) == 2


@pytest.mark.slow
def test_train_under_mirrored_strategy_then_quantize_a_class_folder(tmp_path, capsys):
    rng = np.random.default_rng(0)
    for cls, ch in (("red", 0), ("blue", 2)):
        (tmp_path / "data" / cls).mkdir(parents=True)
        for i in range(8):
            a = rng.integers(0, 80, size=(40, 40, 3), dtype=np.uint8)
            a[..., ch] = 230
            Image.fromarray(a).save(tmp_path / "data" / cls / ("%d.png" % i))
    out = tmp_path / "out"
    assert main(["train", "--data", str(tmp_path / "data"), "--input", "32", "--epochs", "1", "--batch", "8", "--strategy", "mirrored",
                 "--name", "rb", "--out", str(out)]) == 0
    for f in ("rb.keras", "rb_int8.tflite", "rb_curves.png", "rb_confusion.png", "rb_report.json"):
        assert (out / f).is_file(), f
    assert main(["quantize", str(out / "rb.keras"), "--data", str(tmp_path / "data"),
                 "--out", str(tmp_path / "q.tflite")]) == 0
    assert (tmp_path / "q.tflite").stat().st_size > 1000
    assert "int8" in capsys.readouterr().out


@pytest.mark.slow
def test_train_a_detector_from_yolo_txt(tmp_path):
    from host_tools.pipeline import faces
    data = tmp_path / "data"
    data.mkdir()
    x, b = faces.composites(6, 5)
    for i, (im, bs) in enumerate(zip(x, b)):
        Image.fromarray(im).save(data / ("%d.png" % i))
        (data / ("%d.txt" % i)).write_text("".join("0 %f %f %f %f\n" % ((v.x0 + v.x1) / 640, (v.y0 + v.y1) / 480,
                                                                       (v.x1 - v.x0) / 320, (v.y1 - v.y0) / 240)
                                                   for v in bs))
    out = tmp_path / "out"
    assert main(["train", "--kind", "detector", "--data", str(data), "--labels", "face", "--epochs", "1",
                 "--batch", "3", "--name", "det", "--out", str(out)]) == 0
    import json
    rep = json.loads((out / "det_report.json").read_text())
    assert len(rep["anchors"]) == 10 and rep["labels"] == ["face"]
    from host_tools.pipeline.quantize import input_quantization
    assert input_quantization((out / "det_int8.tflite").read_bytes()) == (pytest.approx(1 / 255), -128)
    assert main(["train", "--kind", "detector", "--data", str(data), "--out", str(out)]) == 2   # no --labels
