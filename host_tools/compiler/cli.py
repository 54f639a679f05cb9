"""`python -m host_tools compile MODEL.tflite --name NAME --kind classifier|detector [...]`: kmodel V3 + manifest."""
import argparse
import sys
from pathlib import Path

from host_tools.compiler.build import compile_file
from host_tools.compiler.errors import CompileError
from host_tools.k210 import firmware


def _floats(s):
    return [float(x) for x in s.split(",") if x.strip()] if s else []


def _labels(s):
    if not s:
        return []
    p = Path(s)
    if p.is_file():
        return [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
    return [x.strip() for x in s.split(",")]


def main(argv) -> int:
    ap = argparse.ArgumentParser(prog="python -m host_tools compile",
                                 description="int8 tflite -> kmodel V3 (+ <name>.json manifest, + <name>_be.kmodel "
                                             "when the model needs kpu.load_flash)")
    ap.add_argument("tflite", help="fully-integer tflite (int8 input with scale 1/255, zero point -128)")
    ap.add_argument("--out", default="models", help="output folder (default: models)")
    ap.add_argument("--name", help="model name (default: the tflite file name without _int8)")
    ap.add_argument("--kind", choices=("classifier", "detector"), default="classifier")
    ap.add_argument("--labels", default="", help="labels file (one per line) or comma-separated labels")
    ap.add_argument("--anchors", default="", help="detector: comma-separated anchor w,h pairs (grid units)")
    ap.add_argument("--threshold", type=float, default=0.5)
    ap.add_argument("--nms", type=float, default=0.3)
    ap.add_argument("--big-endian", action="store_true",
                    help="also write <name>_be.kmodel for kpu.load_flash (written anyway when the model needs it)")
    a = ap.parse_args(argv[1:])
    name = a.name or Path(a.tflite).stem.replace("_int8", "")
    try:
        m = compile_file(a.tflite, a.out, name, a.kind, _labels(a.labels), _floats(a.anchors), a.threshold, a.nms,
                         big_endian=a.big_endian or None)
    except CompileError as e:
        print("compile: refused: %s" % e, file=sys.stderr)
        return 1
    mem = m.memory
    print("%s: %s/%s (%d bytes), input %dx%dx%d, outputs %s" % (m.name, a.out, m.kmodel, m.size, m.input["w"],
          m.input["h"], m.input["c"], ", ".join("x".join(map(str, o["shape"])) for o in m.outputs)))
    fit = firmware.Verdict(next(b for b in firmware.BUILDS if m.fits[b]), m.load, m.fits)
    print("  main memory %d B, KPU RAM %d B, weights %d B, system heap %d B; runs on %s%s"
          % (mem["main_mem"], mem["kpu_ram"], mem["weights"], mem["heap"], fit.text(),
             ", big-endian copy %s" % m.big_endian if m.big_endian else ""))
    return 0
