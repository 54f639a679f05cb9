"""The pipeline's commands through `python -m host_tools` dispatch: check exit codes, the detector path of train."""
import json

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
    assert main(["check", str(tmp_path / "missing.onnx")]) == 1


@pytest.mark.slow
def test_train_a_detector_from_yolo_txt(tmp_path, capsys):
    """The detector goes through the same orchestration: kind from the folder, labels from classes.txt, report."""
    from host_tools.pipeline import detector, faces
    if not hasattr(detector, "default_config"):
        pytest.skip("detector training from a user's set (branch i12det) is not on this branch yet")
    data = tmp_path / "data"
    data.mkdir()
    x, b = faces.composites(12, 5)
    for i, (im, bs) in enumerate(zip(x, b)):
        Image.fromarray(im).save(data / ("%d.png" % i))
        (data / ("%d.txt" % i)).write_text("".join("0 %f %f %f %f\n" % ((v.x0 + v.x1) / 640, (v.y0 + v.y1) / 480,
                                                                       (v.x1 - v.x0) / 320, (v.y1 - v.y0) / 240)
                                                   for v in bs))
    out = tmp_path / "out"
    assert main(["train", "--data", str(data), "--epochs", "1", "--out", str(out)]) == 1   # classes unnamed
    assert "classes.txt" in capsys.readouterr().err
    (data / "classes.txt").write_text("face\n")
    assert main(["train", "--data", str(data), "--epochs", "1", "--name", "det", "--out", str(out)]) in (0, 3)
    rep = json.loads((out / "det_report.json").read_text())
    assert (rep["kind"], rep["metric"], rep["labels"]) == ("detector", "map50", ["face"])
    assert set(rep["val"]) == {"float", "int8", "kmodel"} and len(rep["anchors"]) == 10
    from host_tools.pipeline.quantize import input_quantization
    assert input_quantization((out / "det_int8.tflite").read_bytes()) == (pytest.approx(1 / 255), -128)
