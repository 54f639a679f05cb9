"""`models`, `train`, `quantize` and `check` commands (python -m host_tools <command> ...)."""
import argparse
import json
import sys
from pathlib import Path

DEMOS = ("digits", "faces")


def _log(msg):
    print(msg, flush=True)


def cmd_check(args) -> int:
    from host_tools import command
    from host_tools.pipeline import checker
    rc = 0
    for f in args.files:           # an unreadable file: one error line, and the others are still checked
        try:
            rep = checker.check_file(f)
        except (OSError, ValueError) as e:
            print("error: %s" % command.message(e), file=sys.stderr)
            rc = command.FAILED
            continue
        rc = max(rc, _check_report(rep, args))
    return rc


def _check_report(rep, args) -> int:
    if args.json:
        print(json.dumps({"source": rep.source, "ok": rep.ok, "findings": [vars(x) for x in rep.findings],
                          "memory": vars(rep.memory), "advice": rep.advice}, indent=1))
    else:
        print(rep.text())
    return 0 if rep.ok else 1


def _compile(out_dir, name, kind, labels, anchors=(), threshold=0.5, nms=0.3):
    from host_tools.compiler import compile_file
    tfl = out_dir / (name + "_int8.tflite")
    man = compile_file(tfl, out_dir, name, kind, labels, anchors=anchors, threshold=threshold, nms=nms)
    _log("%s: compiled %s -> %s (%d bytes, load %s)" % (name, tfl.name, man.kmodel, man.size, man.load))
    return man


def cmd_models(args) -> int:
    from host_tools.files import write_atomic
    from host_tools.pipeline import checker
    from host_tools import outdir
    out = outdir.claim(args.out, outdir.MODEL_FILES, force=args.force, command="models").path
    out.mkdir(parents=True, exist_ok=True)
    only = args.only or list(DEMOS)
    built = []
    if "digits" in only:         # the user's pipeline (train --data), kmodel and manifest included
        from host_tools.pipeline import demo_digits
        rep, verdict = demo_digits.build(out, strategy=args.strategy, log=_log)
        if not verdict.useful:
            print("models: digits: %s" % verdict.message, file=sys.stderr)
            return 3
        _log("digits: %s" % verdict.message)
        # the classifier's labels, one per line, for `kmodel run --labels` and `compile --labels`
        write_atomic(args.labels_file, "\n".join(demo_digits.LABELS) + "\n")
    if "faces" in only:
        from host_tools.pipeline import demo_faces
        rep, _ = demo_faces.build(out, strategy=args.strategy, log=_log)
        built.append((demo_faces.NAME, "detector", demo_faces.LABELS, rep["anchors"], demo_faces.THRESHOLD,
                      demo_faces.NMS))
    for name, *_ in built:
        rep = checker.check_file(out / (name + "_int8.tflite"))
        _log(rep.text())
        if not rep.ok:
            from host_tools.command import Failed
            raise Failed("models: %s breaks K210 rules (the findings above); not compiling it" % name)
    if args.no_compile:
        _log("models: --no-compile given; kmodels not rebuilt")
        return 0
    for name, kind, labels, anchors, thr, nms in built:
        _compile(out, name, kind, labels, anchors, thr, nms)
    return 0


def _size(text):
    """--input 64 or 96x64 (w x h) -> (w, h)."""
    w, _, h = text.lower().partition("x")
    try:
        return (int(w), int(h or w))
    except ValueError:
        raise argparse.ArgumentTypeError("expected a side like 64 or a size like 96x64, got %r" % text) from None


def train_settings(args, kind) -> dict:
    """The training settings the user gave (the rest are chosen from the data), by the config's own names."""
    common = {"epochs": args.epochs, "batch": args.batch, "lr": args.lr, "framing": args.framing, "alpha": args.alpha}
    if kind == "classifier":
        from host_tools.pipeline.camera_augment import Augment
        d = dict(common, arch=args.arch, input=args.input, weights=args.weights, val_fraction=args.val, seed=args.seed)
        if args.no_flip:
            d["augment"] = Augment(flip=False)
        return {k: v for k, v in d.items() if v is not None}
    if args.weights:
        from host_tools.pipeline.defaults import ConfigError
        raise ConfigError("--weights: a detector's backbone is trained from scratch; --weights is for a classifier")
    d = dict(common, backbone=args.arch, input_size=args.input)
    d = {k: v for k, v in d.items() if v is not None}
    if args.val is not None:
        d["val_fraction"] = args.val
    if args.seed is not None:
        d["seed"] = args.seed
    return d


def cmd_train(args) -> int:
    from host_tools.pipeline import userflow
    if args.dataset and args.kind == "detector":
        from host_tools.command import UsageError
        raise UsageError("train: --dataset %s is a classification set; --kind detector needs --data" % args.dataset)
    kind = "classifier" if args.dataset else (args.kind or userflow.detect_kind(args.data))
    req = userflow.Request(data=Path(args.data) if args.data else None, dataset=args.dataset, kind=kind,
                           name=args.name, out=args.out,
                           labels=tuple(x.strip() for x in args.labels.split(",")) if args.labels else (),
                           deploy=args.deploy, strategy=args.strategy, settings=train_settings(args, kind),
                           force=args.force)
    return userflow.run(req, log=_log)


def cmd_quantize(args) -> int:
    import keras
    import numpy as np

    from host_tools.files import write_atomic
    from host_tools.pipeline import calibration, calibration_report, datasets, quantize, train
    method = calibration.Calibration(args.calibration, args.percentile)
    model = keras.models.load_model(args.model, compile=False)
    _, h, w, _ = model.inputs[0].shape
    root = Path(args.data)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in datasets.IMAGE_EXTS)
    if not files:
        raise datasets.DatasetError("--data %s: holds no images for calibration" % root)

    def views(paths):     # as the board's camera hands them to the KPU
        return np.stack([datasets.board_view(datasets.load_image(p), w, h, args.framing) for p in paths])
    calib = quantize.representative(train.to_input(views(files)), args.count, 0)
    out = Path(args.out or Path(args.model).with_name(Path(args.model).stem + "_int8.tflite"))
    subdirs = [p for p in root.iterdir() if p.is_dir()]
    if len(subdirs) >= 2 and model.output_shape[-1] == len(subdirs):
        # labelled images: every method measured (float / int8 / kmodel), so the user can pick
        _, per_class = datasets.class_folders(root, min_per_class=1)
        x = views([f for fs in per_class for f in fs])
        y = np.array([i for i, fs in enumerate(per_class) for _ in fs])
        rows = calibration_report.compare(model, calib, x, y, args.percentile)
        tfl = next(r.tflite for r in rows if r.method == args.calibration)
        paths = calibration_report.write(out.with_suffix(""), rows, len(y), str(root), args.percentile)
        _log(calibration_report.table(rows, len(y), args.percentile))
        _log("quantize: the methods compared in %s" % paths["md"])
    else:
        tfl = quantize.to_int8_tflite(model, calib, method)
    write_atomic(out, tfl)
    _log("quantize: wrote %s (%d bytes), %s calibration on %d images" % (out, len(tfl), args.calibration,
                                                                        min(args.count, len(files))))
    return 0


# ------------------------------------------------------------------ arguments (the table in host_tools/__main__.py)

def _verbose(p):
    p.add_argument("--verbose", action="store_true", help="show TensorFlow's own log lines")


def _strategy(p):
    p.add_argument("--strategy", default="default", choices=("default", "mirrored", "multi-worker"),
                   help="tf.distribute strategy")


def _with_tensorflow(fn):
    """TensorFlow imported quietly (its start-up lines hidden unless --verbose) before the command runs."""
    def run(args):
        from host_tools.pipeline import freed_memory, quiet
        freed_memory.keep_freed_memory()
        quiet.set_verbose(args.verbose)
        quiet.import_tensorflow()
        return fn(args)
    run.__name__ = fn.__name__
    return run


def add_check(p):
    p.add_argument("files", nargs="+", help=".keras / .h5 / .tflite model files")
    p.add_argument("--json", action="store_true", help="one JSON report per file")
    _verbose(p)


def add_models(p):
    p.add_argument("--out", default="models", help="the models folder (replaces the demos' files only)")
    p.add_argument("--force", action="store_true", help="write into --out even when it holds files that are not "
                                                        "models (they are kept)")
    p.add_argument("--labels-file", default="labels.txt", help="where the demo classifier's labels go")
    p.add_argument("--only", action="append", choices=DEMOS, help="build only this demo (repeatable; default: "
                                                                  "all)")
    _strategy(p)
    p.add_argument("--no-compile", action="store_true", help="faces: stop after the int8 tflite file")
    _verbose(p)


def add_train(p):
    p.description = ("dataset -> Keras -> int8 tflite -> kmodel + manifest + report (-> board with --deploy). "
                     "Every setting not given is chosen from the data. Exit 3: trained, but the model is not "
                     "clearly better than chance (no kmodel or manifest written).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", help="class subfolders of photos (classifier), or photos with Pascal VOC .xml / "
                                    "YOLO .txt annotations (detector); one of --data or --dataset, no default")
    src.add_argument("--dataset", choices=("cifar10",), help="a public dataset instead: cifar10 (Keras' loader; "
                                                             "downloaded once into its cache; default: --data)")
    p.add_argument("--kind", choices=("classifier", "detector"), help="default: from the folder")
    p.add_argument("--name", help="model name (default: the folder's name)")
    p.add_argument("--out", help="where everything goes (default out/train/NAME); it may hold only model files "
                                 "unless --force")
    p.add_argument("--force", action="store_true", help="write into --out even when it holds other files (they "
                                                        "are kept)")
    p.add_argument("--deploy", metavar="PORT", help="also put the model on the board at PORT (with the demo "
                                                    "of the other kind when it has none; default: not deployed)")
    p.add_argument("--labels", help="detector class names, comma separated (default: the VOC names, or "
                                    "classes.txt beside YOLO txt files)")
    p.add_argument("--arch", choices=("small", "mobilenet", "cifar-mobilenet"),
                   help="network (default small; mobilenet with --weights; cifar-mobilenet, the TinyML slides' "
                        "CIFAR-10 net, with --dataset cifar10)")
    p.add_argument("--alpha", type=float, help="MobileNetV1 width (default 0.75)")
    p.add_argument("--input", type=_size, help="input size: 64 or WxH (default: 64, 224 for mobilenet, 32 for "
                                                     "cifar-mobilenet)")
    p.add_argument("--weights", help="start from pretrained MobileNet weights: 'imagenet' (Keras downloads "
                                     "them once) or a Keras no-top .h5 file (default: none, from scratch)")
    p.add_argument("--framing", choices=("crop", "stretch"),
                   help="how a photo becomes the input: crop to its aspect then resize (default), or stretch")
    p.add_argument("--epochs", type=int, help="at most this many epochs (default: from the dataset size; "
                                              "early stopping ends sooner)")
    p.add_argument("--batch", type=int, help="batch size (default: from the dataset size)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: from the architecture)")
    p.add_argument("--val", type=float, help="validation fraction (default 0.2, stratified)")
    p.add_argument("--no-flip", action="store_true", help="no mirror images in augmentation (text, digits)")
    p.add_argument("--seed", type=int, help="random seed of the split, augmentation and weights (default 0)")
    _strategy(p)
    _verbose(p)


def add_quantize(p):
    p.add_argument("model", help="trained .keras model")
    p.add_argument("--data", required=True, help="folder of calibration images (class subfolders give a "
                                                 "float vs int8 accuracy report)")
    p.add_argument("--count", type=int, default=200, help="calibration images used at most")
    p.add_argument("--framing", choices=("crop", "stretch"), default="crop",
                   help="how a photo becomes the input (as the model was trained)")
    p.add_argument("--out", help="the int8 tflite to write (default: <model>_int8.tflite beside the model)")
    from host_tools.pipeline.calibration import DEFAULT, METHODS, PERCENTILE
    p.add_argument("--calibration", choices=METHODS, default=DEFAULT,
                   help="activation ranges: minmax (TFLite's), percentile (clip the rarest values), kld (entropy, "
                        "as TensorRT / Maix-EMC); with class subfolders all three are measured and tabled")
    p.add_argument("--percentile", type=float, default=PERCENTILE, help="percentile: the share of each activation's "
                                                                        "values kept inside its range")
    _verbose(p)


run_check = _with_tensorflow(cmd_check)
run_models = _with_tensorflow(cmd_models)
run_train = _with_tensorflow(cmd_train)
run_quantize = _with_tensorflow(cmd_quantize)
