"""`export tflm MODEL.tflite` (C++ source for TFLite Micro) and `export tflite MODEL.keras --float`."""
from pathlib import Path

SLIDES = "the TinyML slides' CIFAR-10 build on a Cortex-M3: 137 KB flash, 8.6 KB SRAM"


def cmd_tflm(args) -> int:
    from host_tools import outdir
    from host_tools.export import tflm
    src_path = Path(args.model)
    if not src_path.is_file():
        raise FileNotFoundError(2, "No such file or directory", str(src_path))
    out = outdir.claim(args.out, ("*_model.cc", "*_model.h"), force=args.force, command="export tflm").path
    src, files = tflm.export_file(src_path, out)
    print("export tflm: wrote %s" % ", ".join(str(f) for f in files))
    print("  model array %d bytes (flash), tensor arena %d bytes (RAM), %d ops: %s"
          % (src.model_bytes, src.arena_bytes, len(src.ops), ", ".join(o[3:] for o in src.ops)))
    print("  for scale, %s (program and all)" % SLIDES)
    return 0


def cmd_tflite(args) -> int:
    from host_tools.command import UsageError
    if not args.float:
        raise UsageError("export tflite: only --float is exported here; the int8 tflite the K210 takes comes from "
                         "`python -m host_tools quantize MODEL --data DIR`")
    from host_tools.export import float_tflite
    from host_tools.pipeline import quiet
    quiet.set_verbose(args.verbose)
    quiet.import_tensorflow()
    path, n = float_tflite.export_file(args.model, args.out)
    print("export tflite: wrote %s (%d bytes, float32)" % (path, n))
    return 0


def add_arguments(ap):
    sub = ap.add_subparsers(dest="action", required=True, metavar="{tflm,tflite}")
    p = sub.add_parser("tflm", help="a .tflite as TFLite-Micro C++ source: <name>_model.cc (aligned const array and "
                                    "length) and <name>_model.h (arena size, op resolver list)")
    p.add_argument("model", help="the .tflite file (int8 or float)")
    p.add_argument("--out", default="out/tflm", help="folder for the two files (replaces only *_model.cc/.h)")
    p.add_argument("--force", action="store_true", help="write into --out even when it holds other files (they "
                                                        "are kept)")
    p.set_defaults(fn=cmd_tflm)
    p = sub.add_parser("tflite", help="a Keras model as a float32 .tflite")
    p.add_argument("model", help="the .keras or .h5 model")
    p.add_argument("--float", action="store_true", help="float32 weights and activations (required: the int8 "
                                                        "tflite comes from `quantize`)")
    p.add_argument("--out", help="the .tflite to write (default <model>_float.tflite beside the model)")
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")
    p.set_defaults(fn=cmd_tflite)


def run(args) -> int:
    return args.fn(args)
