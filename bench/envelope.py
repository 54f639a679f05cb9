"""Accuracy of the demo kmodels on the KPU emulator, on named data: the digits validation renders (accuracy) and
the faces held-out composites (mAP@0.5), for the committed kmodel and for the committed int8 tflite compiled now;
beside them the float and int8 tflite figures of models/*_report.json, and how many outputs differ from LiteRT.

    .venv/bin/python bench/envelope.py [--units-max N] [--faces 200] [--write-report]

--units-max caps the BN units per output step (kpu_arith.units_per_step) to compare rules (nncase's is 1024);
--write-report records the figures in models/<name>_report.json and .md.
"""
import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

MODELS = ROOT / "models"


def kpu_outputs(km, images):
    from host_tools.kmodel import run
    return np.array([run(km, np.ascontiguousarray(im.transpose(2, 0, 1)))[0] for im in images])


def inside(km) -> str:
    from host_tools.kmodel.netinfo import envelope
    bad = envelope(km)[0]
    return "inside" if not bad else "OUTSIDE at %d layers" % len(bad)


def digits(km):
    from host_tools.pipeline import demo_digits
    from host_tools.pipeline.quantize import litert_int8
    x, y = demo_digits.validation_set()
    got = kpu_outputs(km, x).reshape(len(x), -1)
    ref, step = litert_int8(MODELS / "digits_int8.tflite", x)
    ref = ref.reshape(len(x), -1)
    top = got.argmax(1)
    # LiteRT's quantized softmax may tie two classes: the same top-1 is our class holding LiteRT's largest output
    return {"accuracy": float((top == y).mean()), "top1_as_litert": float((ref[np.arange(len(x)), top] == ref.max(1))
                                                                          .mean())}


def faces(km, count):
    from host_tools.manifest import load
    from host_tools.pipeline import demo_faces, detector, faces as F
    from host_tools.pipeline.quantize import litert_int8
    x, boxes = F.composites(count, demo_faces.SEED + 1, held_out=True)
    got = kpu_outputs(km, x)
    ref, step = litert_int8(MODELS / "faces_int8.tflite", x)
    ev = detector.evaluate(got.transpose(0, 2, 3, 1), boxes, detector.config_from_manifest(load(MODELS / "faces.json")))
    off = np.abs(got - ref.transpose(0, 3, 1, 2)) > step / 2
    return {"map50": float(ev["map50"]), "outputs_off_litert": float(off.mean())}


def write_report(name, figures):
    """Add the kmodel figures to models/<name>_report.json and its .md (a section of their own)."""
    path = MODELS / (name + "_report.json")
    rep = json.loads(path.read_text())
    rep["kmodel_emulator"] = figures
    path.write_text(json.dumps(rep, indent=2) + "\n")
    md = MODELS / (name + "_report.md")
    text = md.read_text().split("\n## kmodel on the KPU emulator")[0].rstrip("\n")
    lines = ["", "## kmodel on the KPU emulator (bench/envelope.py)", ""]
    lines += ["- %s: %s" % (k, v if isinstance(v, str) else "%.4f" % v) for k, v in figures.items()]
    md.write_text(text + "\n" + "\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units-max", type=float, default=None)
    ap.add_argument("--faces", type=int, default=200, help="held-out composites (the report's mAP uses 200)")
    ap.add_argument("--write-report", action="store_true")
    a = ap.parse_args(argv)
    from host_tools.compiler import compile_tflite, kpu_arith
    from host_tools.kmodel import load
    if a.units_max:
        kpu_arith.UNITS_PER_STEP_MAX = a.units_max
    for name in ("digits", "faces"):
        rep = json.loads((MODELS / (name + "_report.json")).read_text())
        committed = load(MODELS / (name + ".kmodel"))
        with tempfile.TemporaryDirectory() as tmp:
            fresh = compile_tflite(MODELS / (name + "_int8.tflite")).kmodel
        for label, km in (("committed kmodel", committed), ("compiled now", fresh)):
            fig = digits(km) if name == "digits" else faces(km, a.faces)
            key = "accuracy" if name == "digits" else "map50"
            agree = ("top-1 as LiteRT %.2f%%" % (100 * fig["top1_as_litert"]) if name == "digits" else
                     "%.3f%% of outputs off LiteRT" % (100 * fig["outputs_off_litert"]))
            print("%s %s (%s envelope): %s %.4f, %s; float %.4f, int8 tflite %.4f"
                  % (name, label, inside(km), key, fig[key], agree, rep["float_" + key], rep["int8_" + key]))
            if a.write_report and label == "committed kmodel":
                write_report(name, dict({"kmodel_" + k: v for k, v in fig.items()}, envelope=inside(km)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
