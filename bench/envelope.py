"""The demo kmodels inside the arithmetic envelope, on named data: accuracy on the KPU emulator (digits validation
renders; mAP@0.5 on the faces held-out composites) beside the float and int8 tflite figures of
models/*_report.json; and where the KPU's arithmetic and LiteRT's differ: the model outputs, and each conv layer
given LiteRT's own input map (so nothing carries over from the layers before).

    .venv/bin/python bench/envelope.py [--faces 200] [--compare DIR] [--units-max N [N ...]] [--write-report]

--compare DIR also measures DIR/<name>.kmodel (e.g. what an earlier compiler made); --units-max N ... compiles the
committed tflites with at most N BN units per output step (kpu_arith.units_per_step; nncase's rule is 1024) and
measures that too; --write-report records the figures in models/<name>_report.{json,md} (the committed kmodel's,
and DIR's as "before").
"""
import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

MODELS = ROOT / "models"


def kpu_outputs(km, images):
    from host_tools.kmodel import run
    return np.array([run(km, np.ascontiguousarray(im.transpose(2, 0, 1)))[0] for im in images])


def envelope_state(km) -> str:
    from host_tools.kmodel.netinfo import envelope
    bad = envelope(km)[0]
    return "inside the envelope" if not bad else "outside the envelope at %d conv layers" % len(bad)


def digits(km):
    from host_tools.pipeline import demo_digits
    from host_tools.pipeline.quantize import litert_int8
    x, y = demo_digits.validation_set()
    got = kpu_outputs(km, x).reshape(len(x), -1)
    ref = litert_int8(MODELS / "digits_int8.tflite", x)[0].reshape(len(x), -1)
    top = got.argmax(1)
    # LiteRT's quantized softmax may tie two classes: the same top-1 is our class holding LiteRT's largest output
    return {"accuracy": float((top == y).mean()),
            "top1_as_litert": float((ref[np.arange(len(x)), top] == ref.max(1)).mean())}


def faces(km, count):
    from host_tools.manifest import load
    from host_tools.pipeline import demo_faces, detector, faces as F
    from host_tools.pipeline.quantize import litert_int8
    x, boxes = F.composites(count, demo_faces.SEED + 1, held_out=True)
    got = kpu_outputs(km, x).transpose(0, 2, 3, 1)
    ref, step = litert_int8(MODELS / "faces_int8.tflite", x)

    cfg = detector.config_from_manifest(load(MODELS / "faces.json"))

    def map50(out):
        return float(detector.evaluate(out, boxes, cfg)["map50"])
    return {"map50": map50(got), "outputs_off_litert": float((np.abs(got - ref) > step / 2).mean()),
            "litert_map50": map50(ref)}


def layers_vs_litert(name, images):
    """Per conv layer, the fraction of outputs the compiler's prediction (k210.arith on the numbers it writes)
    puts one step or more away from LiteRT's, each layer given LiteRT's own input tensor."""
    from ai_edge_litert.interpreter import Interpreter
    from host_tools.compiler import ir, lower, tflite_graph
    from host_tools.compiler.kpu_layer import layer_arith
    from host_tools.k210.arith import forward
    path = MODELS / (name + "_int8.tflite")
    prog = lower.lower(tflite_graph.read(path))
    it = Interpreter(model_path=str(path), experimental_preserve_all_tensors=True, num_threads=1)
    it.allocate_tensors()
    index = {d["name"]: d["index"] for d in it.get_tensor_details()}
    inp = it.get_input_details()[0]["index"]
    conv = [L for L in prog.layers if isinstance(L, ir.ConvLayer) and L.inp.name in index and L.out.name in index]
    arith = {id(L): layer_arith(L) for L in conv}
    off, total = {id(L): 0 for L in conv}, {id(L): 0 for L in conv}
    for img in images:
        it.set_tensor(inp, (img.astype(np.int16) - 128).astype(np.int8)[None])
        it.invoke()

        def tensor(t):
            return (it.get_tensor(index[t])[0].astype(np.int16) + 128).astype(np.uint8).transpose(2, 0, 1)
        for L in conv:
            x, y = tensor(L.inp.name), tensor(L.out.name)
            if x.shape != L.inp.shape or y.shape != L.out.shape:    # a stride moved between layers: not comparable
                continue
            d = forward(arith[id(L)], x) != y
            off[id(L)] += int(d.sum())
            total[id(L)] += d.size
    return [(L.op_index, L.op, L.post is not None, off[id(L)] / total[id(L)]) for L in conv if total[id(L)]]


def _report_figures(rep, key):
    """(float, int8) of a report: a `train` report's "val", or the older float_<key> / int8_<key>."""
    if "val" in rep:
        return rep["val"]["float"], rep["val"]["int8"]
    return rep["float_" + key], rep["int8_" + key]


def write_report(name, figures):
    """Add the kmodel figures to models/<name>_report.json and its .md (a section of their own)."""
    path = MODELS / (name + "_report.json")
    rep = json.loads(path.read_text())
    rep["kmodel_emulator"] = figures
    path.write_text(json.dumps(rep, indent=1, sort_keys=True) + "\n")     # as pipeline/report.py writes it
    md = MODELS / (name + "_report.md")
    text = md.read_text().split("\n## kmodel on the KPU emulator")[0].rstrip("\n")
    lines = ["", "## kmodel on the KPU emulator (bench/envelope.py)", ""]
    lines += ["- %s: %s" % (k, v if isinstance(v, str) else "%.4f" % v) for k, v in figures.items()]
    md.write_text(text + "\n" + "\n".join(lines) + "\n")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--faces", type=int, default=200, help="held-out composites (the report's mAP uses 200)")
    ap.add_argument("--compare", type=Path, help="also measure DIR/<name>.kmodel")
    ap.add_argument("--units-max", type=float, nargs="+", metavar="N",
                    help="also measure the tflites compiled with at most N units per step (each N)")
    ap.add_argument("--write-report", action="store_true")
    a = ap.parse_args(argv)
    from host_tools.compiler import compile_tflite, kpu_arith
    from host_tools.kmodel import load
    from host_tools.manifest import sha256_file
    for name in ("digits", "faces"):
        rep = json.loads((MODELS / (name + "_report.json")).read_text())
        key = "accuracy" if name == "digits" else "map50"
        kmodels = [("committed kmodel", load(MODELS / (name + ".kmodel")))]
        shas = {"committed kmodel": sha256_file(MODELS / (name + ".kmodel"))}
        if a.compare:
            label = "%s/%s.kmodel" % (a.compare, name)
            kmodels.append((label, load(a.compare / (name + ".kmodel"))))
            shas[label] = sha256_file(a.compare / (name + ".kmodel"))
        for cap in a.units_max or ():
            kpu_arith.UNITS_PER_STEP_MAX = cap
            kmodels.append(("compiled with <= %g units per step" % cap,
                            compile_tflite(MODELS / (name + "_int8.tflite")).kmodel))
            kpu_arith.UNITS_PER_STEP_MAX = float("inf")
        recorded = {}
        for label, km in kmodels:
            fig = digits(km) if name == "digits" else faces(km, a.faces)
            agree = ("top-1 as LiteRT %.2f%%" % (100 * fig["top1_as_litert"]) if name == "digits" else
                     "%.3f%% of outputs off LiteRT (LiteRT's mAP on these %d images %.4f)"
                     % (100 * fig["outputs_off_litert"], a.faces, fig["litert_map50"]))
            print("%s, %s (%s): %s %.4f, %s; float %.4f, int8 tflite %.4f"
                  % (name, label, envelope_state(km), key, fig[key], agree, *_report_figures(rep, key)))
            if label == "committed kmodel" or (a.compare and label.startswith(str(a.compare))):
                tag = "kmodel_" if label == "committed kmodel" else "kmodel_before_"
                recorded.update({tag + k: v for k, v in fig.items()}, **{tag + "envelope": envelope_state(km),
                                                                         tag + "sha256": shas[label]})
        if a.write_report:
            write_report(name, recorded)
        if name == "digits":
            from host_tools.pipeline import demo_digits
            images = demo_digits.validation_set()[0][:20]
        else:
            from host_tools.pipeline import demo_faces, faces as F
            images = F.composites(4, demo_faces.SEED + 1, held_out=True)[0]
        rates = layers_vs_litert(name, images)
        print("%s, each conv layer on LiteRT's own input (%d images), outputs off LiteRT by a step: %s"
              % (name, len(images), ", ".join("%d%s %.4f%%" % (i, " (+LeakyReLU)" if leaky else "", 100 * r)
                                               for i, _, leaky, r in rates)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
