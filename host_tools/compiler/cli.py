"""`python -m host_tools compile MODEL.tflite --name NAME --kind classifier|detector [...]`: kmodel V3 + manifest."""
from pathlib import Path

from host_tools import manifest as mf
from host_tools import outdir
from host_tools.compiler.build import compile_file


def _floats(s):
    return [float(x) for x in s.split(",") if x.strip()] if s else []


def _labels(s):
    if not s:
        return []
    p = Path(s)
    if p.is_file():
        return [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
    return [x.strip() for x in s.split(",")]


def add_arguments(ap):
    ap.description = ("int8 tflite (or float tflite: convs onto the KPU, calibrated on --dataset, the rest float CPU "
                      "layers) -> kmodel V3 (+ <name>.json manifest, + <name>_be.kmodel when the model needs "
                      "kpu.load_flash)")
    ap.add_argument("tflite", help="fully-integer tflite (int8 input with scale 1/255, zero point -128), or a float "
                                   "tflite (input = pixel / 255)")
    ap.add_argument("--out", default="models", help="output folder, a folder of models: the command writes "
                                                    "<name>.kmodel, <name>.json and <name>_be.kmodel only")
    ap.add_argument("--force", action="store_true", help="write into --out even when it holds files that are not "
                                                        "models (they are kept)")
    ap.add_argument("--name", help="model name (default: the tflite file name without _int8)")
    ap.add_argument("--kind", choices=("classifier", "detector"), default="classifier", help="what the model is")
    ap.add_argument("--labels", default="", help="labels file (one per line) or comma-separated labels (default: "
                                                 "none, the app shows class numbers)")
    ap.add_argument("--anchors", default="", help="detector: comma-separated anchor w,h pairs (grid units)")
    ap.add_argument("--threshold", type=float, default=0.5, help="detector: the box score threshold")
    ap.add_argument("--nms", type=float, default=0.3, help="detector: the non-maximum suppression IoU")
    ap.add_argument("--input-mean", type=float, default=None, help="the model was trained on (pixel / 255 - M) / S: "
                                                                  "the camera byte goes in and the first convs absorb "
                                                                  "it, as ncc's option (default 0)")
    ap.add_argument("--input-std", type=float, default=None, help="S of --input-mean (default 1)")
    ap.add_argument("--dataset", metavar="DIR", help="float image model: a folder of calibration images, seen as the "
                                                     "camera sees them, for the KPU layers' uint8 ranges, as ncc's "
                                                     "--dataset (required for such a model; default: none)")
    ap.add_argument("--dump", metavar="DIR", help="also write the lowered graph to DIR/<name>.txt and <name>.dot "
                                                "(layer index, op, shapes, KPU or CPU, KPU RAM and main memory "
                                                "offsets), as ncc's --dump-ir (default: not written)")
    ap.add_argument("--big-endian", action="store_true",
                    help="also write <name>_be.kmodel for kpu.load_flash (written anyway when the model needs it)")


def run(a) -> int:
    name = a.name or Path(a.tflite).stem.replace("_int8", "")
    outdir.claim(a.out, outdir.MODEL_FILES, force=a.force, command="compile")    # replaces <name>.* only
    norm = None
    if a.input_mean is not None or a.input_std is not None:
        norm = (0.0 if a.input_mean is None else a.input_mean, 1.0 if a.input_std is None else a.input_std)
    if a.dump:
        outdir.claim(a.dump, ("*.txt", "*.dot"), force=a.force, option="--dump", command="compile")
    m = compile_file(a.tflite, a.out, name, a.kind, _labels(a.labels), _floats(a.anchors), a.threshold,
                     a.nms, big_endian=a.big_endian or None, dump_dir=a.dump, input_norm=norm, dataset=a.dataset)
    print(mf.summary(m, Path(a.out) / m.kmodel))
    if a.dump:
        print("  lowered graph: %s/%s.txt, %s.dot" % (a.dump, name, name))
    return 0
