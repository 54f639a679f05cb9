"""`models`, `train`, `quantize` and `check` commands (python -m host_tools <command> ...)."""
import argparse
import json
import sys
from pathlib import Path

DEMOS = ("digits", "faces")


def _log(msg):
    print(msg, flush=True)


def cmd_check(args) -> int:
    from host_tools.pipeline import checker
    rc = 0
    for f in args.files:
        try:
            rep = checker.check_file(f)
        except (OSError, ValueError) as e:
            print("%s: %s" % (f, e), file=sys.stderr)
            rc = 2
            continue
        if args.json:
            print(json.dumps({"source": rep.source, "ok": rep.ok,
                              "findings": [vars(x) for x in rep.findings],
                              "memory": vars(rep.memory), "advice": rep.advice}, indent=1))
        else:
            print(rep.text())
        if not rep.ok:
            rc = max(rc, 1)
    return rc


def _compile(out_dir, name, kind, labels, anchors=(), threshold=0.5, nms=0.3):
    from host_tools.compiler import compile_file
    tfl = out_dir / (name + "_int8.tflite")
    man = compile_file(tfl, out_dir, name, kind, labels, anchors=anchors, threshold=threshold, nms=nms)
    _log("%s: compiled %s -> %s (%d bytes, load %s)" % (name, tfl.name, man.kmodel, man.size, man.load))
    return man


def cmd_models(args) -> int:
    from host_tools.files import write_atomic
    from host_tools.pipeline import checker
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    only = args.only or list(DEMOS)
    built = []
    if "digits" in only:
        from host_tools.pipeline import demo_digits
        rep, _ = demo_digits.build(out, strategy=args.strategy, log=_log)
        # the classifier's labels, one per line, for `kmodel run --labels` and `compile --labels`
        write_atomic(args.labels_file, "\n".join(demo_digits.LABELS) + "\n")
        built.append((demo_digits.NAME, "classifier", demo_digits.LABELS, (), 0.5, 0.3))
    if "faces" in only:
        from host_tools.pipeline import demo_faces
        rep, _ = demo_faces.build(out, strategy=args.strategy, log=_log)
        built.append((demo_faces.NAME, "detector", demo_faces.LABELS, rep["anchors"], demo_faces.THRESHOLD,
                      demo_faces.NMS))
    for name, *_ in built:
        rep = checker.check_file(out / (name + "_int8.tflite"))
        _log(rep.text())
        if not rep.ok:
            print("models: %s breaks K210 rules; not compiling it" % name, file=sys.stderr)
            return 1
    if args.no_compile:
        _log("models: --no-compile given; kmodels not rebuilt")
        return 0
    for name, kind, labels, anchors, thr, nms in built:
        _compile(out, name, kind, labels, anchors, thr, nms)
    return 0


def cmd_train(args) -> int:
    from host_tools.pipeline import arch, checker, datasets, quantize, report, train
    out = Path(args.out)
    if args.kind == "classifier":
        size = (args.input, args.input)
        x, y, names = datasets.load_class_folders(args.data, size)
        tr, va = datasets.split_indices(y, args.val, args.seed)
        rng = __import__("numpy").random.default_rng(args.seed)
        x_tr = __import__("numpy").stack([datasets.augment_image(im, rng, flip=args.flip) for im in x[tr]])

        def build():
            if args.arch == "mobilenet":
                m = arch.mobilenet_v1(args.input, args.alpha, len(names), name=args.name)
                if args.weights:
                    arch.load_imagenet_weights(m, args.weights)
                return m
            return arch.small_mobilenet(args.input, len(names), name=args.name)
        pre = checker.check_keras(build())
        _log(pre.text())
        if not pre.ok:
            return 1
        model, hist = train.train_classifier(build, x_tr, y[tr], x[va], y[va], epochs=args.epochs,
                                             batch_size=args.batch, lr=args.lr, strategy=args.strategy,
                                             seed=args.seed, desc=args.name)
        tfl = quantize.to_int8_tflite(model, quantize.representative(train.to_input(x_tr), 200, args.seed))
        rep, _, p_int8 = quantize.classifier_report(model, tfl, x[va], y[va])
        report.save_model_files(out, args.name, model, tfl)
        train.save_curves(hist, out / (args.name + "_curves.png"), args.name)
        train.save_confusion(train.confusion_matrix(y[va], p_int8.argmax(1), len(names)), names,
                             out / (args.name + "_confusion.png"), args.name + " int8 (validation)")
        rep.update({"labels": names, "epochs": args.epochs})
        report.write_report(out, args.name, rep, args.name)
        _log("%s: float accuracy %.4f, int8 %.4f" % (args.name, rep["float_accuracy"], rep["int8_accuracy"]))
        return 0
    return _train_detector(args, out)


def _train_detector(args, out) -> int:
    from host_tools.pipeline import checker, datasets, detector, quantize, report, train
    if not args.labels:
        print("train: a detector needs --labels name1,name2,...", file=sys.stderr)
        return 2
    names = args.labels.split(",")
    samples = datasets.load_detection_folder(args.data, names)
    cfg = detector.default_config(samples, names, epochs=args.epochs, batch=args.batch, lr=args.lr,
                                  backbone=args.arch, alpha=args.alpha, seed=args.seed, val_fraction=args.val)
    images, boxes = detector.frames(samples, cfg)
    tr, va = detector.split(len(images), cfg.val_fraction, cfg.seed)
    pre = checker.check_keras(cfg.build(args.name))
    _log(pre.text())
    if not pre.ok:
        return 1
    x_tr, b_tr, x_va, b_va = images[tr], [boxes[i] for i in tr], images[va], [boxes[i] for i in va]
    model, hist = detector.train_detector(cfg, x_tr, b_tr, strategy=args.strategy, seed=cfg.seed, desc=args.name,
                                          val=(x_va, b_va), name=args.name)
    tfl = quantize.to_int8_tflite(model, quantize.representative(train.to_input(x_tr), 200, args.seed))
    report.save_model_files(out, args.name, model, tfl)
    train.save_curves({"loss": hist["loss"]}, out / (args.name + "_curves.png"), args.name)
    val = {"float": detector.map50(detector.keras_predictor(model), x_va, b_va, cfg),
           "int8": detector.map50(detector.int8_predictor(tfl), x_va, b_va, cfg)}
    report.write_report(out, args.name, {"labels": names, "anchors": list(cfg.anchors), "epochs": cfg.epochs,
                                         "metric": "map50", "val": val, "final_loss": hist["loss"][-1]}, args.name)
    _log("%s: anchors %s; validation mAP@0.5 float %.3f, int8 %.3f" % (args.name, list(cfg.anchors), val["float"],
                                                                       val["int8"]))
    return 0


def cmd_quantize(args) -> int:
    import keras
    import numpy as np

    from host_tools.files import write_atomic
    from host_tools.pipeline import datasets, quantize, train
    model = keras.models.load_model(args.model, compile=False)
    _, h, w, _ = model.inputs[0].shape
    root = Path(args.data)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in datasets.IMAGE_EXTS)
    if not files:
        print("quantize: %s holds no images for calibration" % root, file=sys.stderr)
        return 2
    images = np.stack([datasets.load_image(p, (w, h)) for p in files])
    tfl = quantize.to_int8_tflite(model, quantize.representative(train.to_input(images), args.count, 0))
    out = Path(args.out or Path(args.model).with_name(Path(args.model).stem + "_int8.tflite"))
    write_atomic(out, tfl)
    _log("quantize: wrote %s (%d bytes), calibrated on %d images" % (out, len(tfl), min(args.count, len(files))))
    subdirs = [p for p in root.iterdir() if p.is_dir()]
    if len(subdirs) >= 2 and model.output_shape[-1] == len(subdirs):
        x, y, _ = datasets.load_class_folders(root, (w, h))
        rep, _, _ = quantize.classifier_report(model, tfl, x, y)
        _log("quantize: float accuracy %.4f, int8 %.4f on %d images" % (rep["float_accuracy"],
                                                                           rep["int8_accuracy"], len(y)))
    return 0


def parser(prog):
    p = argparse.ArgumentParser(prog="python -m host_tools " + prog)
    if prog == "check":
        p.add_argument("files", nargs="+", help=".keras / .h5 / .tflite model files")
        p.add_argument("--json", action="store_true")
    elif prog == "models":
        p.add_argument("--out", default="models")
        p.add_argument("--labels-file", default="labels.txt", help="where the demo classifier's labels go")
        p.add_argument("--only", action="append", choices=DEMOS)
        p.add_argument("--strategy", default="default", choices=("default", "mirrored", "multi-worker"))
        p.add_argument("--no-compile", action="store_true", help="stop after the int8 tflite files")
    elif prog == "train":
        p.add_argument("--data", required=True, help="class subfolders, or VOC XML / YOLO txt for a detector")
        p.add_argument("--kind", choices=("classifier", "detector"), default="classifier")
        p.add_argument("--arch", choices=("small", "mobilenet"), default="small")
        p.add_argument("--alpha", type=float, default=0.25)
        p.add_argument("--input", type=int, default=64, help="classifier input side in pixels")
        p.add_argument("--weights", help="Keras MobileNet no-top .h5 to start from (mobilenet classifier)")
        p.add_argument("--labels", help="detector class names, comma separated")
        p.add_argument("--epochs", type=int, default=20)
        p.add_argument("--batch", type=int, default=32)
        p.add_argument("--lr", type=float, default=2e-3)
        p.add_argument("--val", type=float, default=0.2, help="validation fraction (fixed split)")
        p.add_argument("--flip", action="store_true", help="horizontal flips in augmentation")
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--strategy", default="default", choices=("default", "mirrored", "multi-worker"))
        p.add_argument("--name", default="model")
        p.add_argument("--out", default="out/train")
    elif prog == "quantize":
        p.add_argument("model", help="trained .keras model")
        p.add_argument("--data", required=True, help="folder of calibration images (class subfolders give a "
                                                     "float vs int8 accuracy report)")
        p.add_argument("--count", type=int, default=200)
        p.add_argument("--out")
    return p


def main(argv) -> int:
    prog, rest = argv[0], argv[1:]
    args = parser(prog).parse_args(rest)
    return {"check": cmd_check, "models": cmd_models, "train": cmd_train, "quantize": cmd_quantize}[prog](args)
