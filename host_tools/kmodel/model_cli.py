"""`python -m host_tools model add FILE.kmodel --kind classifier|detector [...]`: someone else's kmodel into a
models folder, with the manifest the planner, deploy, sim and `kmodel run` read (host_tools/kmodel/adopt.py)."""
import re
from pathlib import Path

from host_tools import framing as F
from host_tools import manifest as mf
from host_tools import outdir
from host_tools.command import UsageError
from host_tools.kmodel.adopt import Facts, add
from host_tools.kmodel.cli import read_labels

NAME = re.compile(r"^[A-Za-z0-9_\-]{1,40}$")     # a flat /flash file name stem


def _floats(option, text):
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError("%s %r: give comma-separated numbers" % (option, text)) from None


def add_arguments(ap):
    ap.description = ("Add someone else's kmodel V3 or V4 (nncase, maix_train, a MaixPy example) to a models folder: "
                      "a copy and its manifest (input, outputs and memory read from the file), so deploy, sim, "
                      "flash plan and kmodel run treat it like ours.")
    sub = ap.add_subparsers(dest="action", required=True, metavar="{add}")
    p = sub.add_parser("add", help="copy a kmodel into a models folder and write its manifest")
    p.add_argument("file", help="the .kmodel file")
    p.add_argument("--kind", required=True, choices=("classifier", "detector"), help="what the model is")
    p.add_argument("--labels", default="", help="labels file (one per line: it goes onto the board as "
                                                "<name>_labels.txt, which models.json names) or comma-separated "
                                                "labels (listed in models.json) (default: none, the app shows class "
                                                "numbers)")
    p.add_argument("--anchors", default="", help="detector: comma-separated anchor w,h pairs in grid cells, e.g. "
                                                 "the 20-class VOC YOLO's 1.08,1.19,3.42,4.41,... (required)")
    p.add_argument("--threshold", type=float, default=0.5, help="detector: the box score threshold")
    p.add_argument("--nms", type=float, default=0.3, help="detector: the non-maximum suppression IoU")
    p.add_argument("--framing", choices=F.FRAMINGS, default=F.DEFAULT,
                   help="how a camera frame becomes the input: crop to its aspect then resize, or stretch")
    p.add_argument("--name", help="model name (default: the file name without .kmodel)")
    p.add_argument("--models", default="models", help="the models folder to add it to (writes <name>.kmodel, "
                                                      "<name>.json, <name>_be.kmodel and <name>_labels.txt only)")
    p.add_argument("--force", action="store_true", help="write into --models even when it holds other files "
                                                        "(they are kept)")


def run(a) -> int:
    src = Path(a.file)
    if not src.is_file():
        raise FileNotFoundError(2, "No such file", str(src))
    name = a.name or src.stem
    if not NAME.match(name):
        raise UsageError("--name %r: use letters, digits, '_' and '-' (it names files on the board's flat /flash)"
                         % name)
    out = outdir.claim(a.models, outdir.MODEL_FILES, force=a.force, option="--models", command="model add")
    facts = Facts(a.kind, tuple(read_labels(a.labels)), tuple(_floats("--anchors", a.anchors)), a.threshold,
                  a.nms, a.framing, labels_file=bool(a.labels) and Path(a.labels).is_file())
    path = add(src, out.path, name, facts)
    m = mf.load(path)
    print(mf.summary(m, path.parent / m.kmodel))
    if m.kind == "detector":
        print("  %d anchors, %d classes%s, threshold %.2f, nms %.2f" % (
            len(m.anchors) // 2, m.outputs[0]["shape"][0] // (len(m.anchors) // 2) - 5,
            "" if m.labels else " (no labels: the app shows class numbers)", m.threshold, m.nms))
    if m.input["format"] != "planar_u8":
        print("  note: float input: kmodel run feeds it numbers; the board's camera app cannot (it needs uint8 "
              "planar input)")
    return 0
