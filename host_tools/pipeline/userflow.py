"""`train --data DIR`: the user's folder of photos to a model on the board, in one command.

dataset -> Keras -> int8 tflite -> kmodel + manifest (labels, anchors, framing carried over) -> report, and with
a port, the board. Every validation figure (float, int8, kmodel on the KPU emulator) is measured on the same
held-out photos as the board's camera would hand them to the KPU. A kmodel that is not clearly better than chance
is said to be so, gets no manifest (so nothing deploys it) and the command exits 3.
"""
import contextlib
import json
import re
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_USELESS = 0, 1, 2, 3


class FlowError(ValueError):
    """The request cannot be carried out as given; the message names the option, file or folder."""


@dataclass(frozen=True)
class Request:
    data: Path
    kind: str = None             # None: from the folder (class subfolders, or VOC XML / YOLO txt annotations)
    name: str = None             # None: the folder's name
    out: Path = None             # None: out/train/<name>
    labels: tuple = ()           # detector class names (default: from the VOC files or classes.txt)
    deploy: str = None           # serial port of a board to put the model on
    strategy: str = "default"
    settings: dict = field(default_factory=dict)   # user-given training settings (defaults.py / detector.py)
    progress: bool = True
    force: bool = False          # write into an --out that holds other files (they are kept)
    dataset: str = None          # a known dataset instead of `data` ("cifar10": Keras' CIFAR-10)


def model_name(folder) -> str:
    """A name usable for files on the PC and the board, from the data folder's name."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(folder).resolve().name).strip("_")[:24]
    return name or "model"


def detect_kind(root) -> str:
    """"detector" for photos with VOC .xml or YOLO .txt annotations, "classifier" for class subfolders of photos.
    Other files (a notes.txt, a README) do not count; a lone class folder is named in the error."""
    root = Path(root)
    if not root.is_dir():
        raise FlowError("--data %s: no such folder" % root)
    from host_tools.pipeline.datasets import IMAGE_EXTS, files_below, ignored_name, yolo_txt_path
    below = files_below(root)
    if any(p.suffix.lower() == ".xml" for p in below):
        return "detector"
    if any(yolo_txt_path(p) is not None for p in below if p.suffix.lower() in IMAGE_EXTS):
        return "detector"
    # class folders as class_folders reads them (a linked folder counts)
    with_images = sorted(d.name for d in root.iterdir() if d.is_dir() and not ignored_name(d.name)
                         and any(f.suffix.lower() in IMAGE_EXTS for f in files_below(d)))
    if len(with_images) >= 2:
        return "classifier"
    if len(with_images) == 1:
        raise FlowError("--data %s: only one class folder (%s); a classifier needs a folder of photos for each "
                        "label, 2 at least" % (root, with_images[0]))
    raise FlowError("--data %s: found neither class subfolders of photos (a classifier: one folder per label) nor "
                    "annotated photos (a detector: Pascal VOC .xml or YOLO .txt beside each image)" % root)


class Stages:
    """Wall time of each stage: stage("name") starts one (ending the last), stage(None) ends the last."""

    def __init__(self):
        self.seconds, self._t = {}, None

    def __call__(self, name):
        now = time.monotonic()
        if self._t is not None:
            self.seconds[self._t[0]] = round(now - self._t[1], 2)
        self._t = (name, now) if name else None


def run(req: Request, log=print) -> int:
    """The whole flow; returns the exit code (0 done, 3 a model no better than chance)."""
    kind = req.kind or ("classifier" if req.dataset else detect_kind(req.data))
    name = req.name or req.dataset or model_name(req.data)
    out = Path(req.out) if req.out else Path("out") / "train" / name
    from host_tools import outdir
    outdir.claim(out, outdir.MODEL_FILES, force=req.force, command="train")   # replaces <name>'s files only
    log("train: %s from %s -> %s" % (kind, req.dataset or req.data, out))
    if kind == "classifier":
        result = _classifier(req, name, out, log)
    else:
        result = _detector(req, name, out, log)
    rep, verdict = result
    md = out / rep["files"]["report"]
    if not verdict.useful:
        print("train: %s: %s. No kmodel or manifest written and nothing deployed; see %s"
              % (name, verdict.message, md), file=sys.stderr)
        return EXIT_USELESS
    log("train: %s: %s" % (name, verdict.message))
    log("train: wrote %s (kmodel %s, manifest %s, report %s)" % (out, rep["files"]["kmodel"],
                                                                 rep["files"]["manifest"], md.name))
    if req.deploy:
        from host_tools.deploy import deploy as D
        manifests = D.select_models([out], **{kind: name}, log=log)
        D.deploy(req.deploy, manifests=manifests, device_dir=D.DEVICE_APP, out_dir=out / "deploy", log=log)
    else:
        log("train: put it on a board with: python -m host_tools deploy --models %s --port PORT" % out)
    return EXIT_OK


# ------------------------------------------------------------------ classifier

def _build_classifier(cfg, n_classes, name):
    from host_tools.pipeline import arch
    if cfg.arch == "mobilenet":
        return arch.mobilenet_v1((cfg.input[1], cfg.input[0]), cfg.alpha, n_classes, name=name)
    if cfg.arch == "cifar-mobilenet":
        return arch.cifar_mobilenet((cfg.input[1], cfg.input[0]), n_classes, name=name)
    return arch.small_mobilenet((cfg.input[1], cfg.input[0]), n_classes, name=name)


def _classifier(req, name, out, log):
    from host_tools.pipeline import datasets, defaults
    stage = Stages()
    stage("load")
    if req.dataset:
        from host_tools.pipeline import cifar10
        arrays = cifar10.load()
        cfg = defaults.default_config(len(arrays[0][1]) + len(arrays[1][1]), len(cifar10.LABELS),
                                      **dict({"arch": "cifar-mobilenet"}, **req.settings))
        data = cifar10.classifier_data(arrays, cfg.input)
    else:
        names, files = datasets.class_folders(req.data)
        _note_skipped(req.data, names, files, log)
        _note_font(names, log)
        cfg = defaults.default_config(sum(len(f) for f in files), len(names), **req.settings)
        data = datasets.load_classifier_data(req.data, cfg.input, cfg.framing, cfg.val_fraction, cfg.seed,
                                             progress=req.progress)
    return classifier_run(name, data, cfg, out, log, strategy=req.strategy, progress=req.progress,
                          source=req.dataset or str(req.data), stage=stage)


def classifier_run(name, data, cfg, out, log, strategy="default", progress=True, source="", stage=None):
    """A classifier from ClassifierData to <out>/<name>.keras, _int8.tflite, _report.md/.json, curves and
    confusion PNGs, and, when the kmodel proves useful, <name>.kmodel + <name>.json. Returns (report, verdict)."""
    from host_tools import kmodel
    from host_tools.pipeline import checker, evaluate, pretrained, quantize, train
    stage = stage or Stages()
    names = data.names
    log("train: %d classes (%s), %d photos for training, %d for validation; %s %dx%d, up to %d epochs, batch %d"
        % (len(names), ", ".join(names), len(data.y_train), len(data.y_val), cfg.arch, cfg.input[0], cfg.input[1],
           cfg.epochs, cfg.batch))
    pre = checker.check_keras(_build_classifier(cfg, len(names), name))
    if not pre.ok:
        raise FlowError(pre.text())

    def build():
        m = _build_classifier(cfg, len(names), name)
        if cfg.weights:
            pretrained.load(m, cfg.weights, cfg.alpha, cfg.input[0])
        return m

    stage("train")
    model, hist = train.train_classifier(build, data, cfg, strategy=strategy, desc=name)
    stage("quantize")
    tfl = quantize.to_int8_tflite(model, quantize.representative(train.to_input(data.x_train_view), 200, cfg.seed))
    with _staged(out, name, model, tfl, "classifier", names, framing=cfg.framing, stage=stage) as staged:
        stage("evaluate")
        figs = evaluate.classifier_figures(model, tfl, kmodel.load(staged.kmodel), data.x_val, data.y_val, progress)
        verdict = evaluate.classifier_verdict(figs["val"]["kmodel"], data.y_val, len(names),
                                              looks=len(hist["val_answers"]))
        train_acc = float((train.predict(model, data.x_train_view).argmax(1) == data.y_train[:len(
            data.x_train_view)]).mean())
        cm = train.confusion_matrix(data.y_val, figs["pred_kmodel"], len(names))
        train.save_curves(hist, staged.folder / (name + "_curves.png"), name)
        train.save_confusion(cm, names, staged.folder / (name + "_confusion.png"), name + " kmodel (validation)")
        stage(None)
        rep = {
            "name": name, "kind": "classifier", "metric": "accuracy", "val": figs["val"], "chance": verdict.chance,
            "useful": verdict.useful, "verdict": verdict.message, "labels": names, "data": source,
            "train_accuracy": train_acc, "framing": cfg.framing,
            "photos": {"train": _per_class(data.y_train, names), "val": _per_class(data.y_val, names)},
            "val_photos": [str(p) for p in data.val_files],
            "per_class_val_accuracy": {n: float(cm[i, i] / max(cm[i].sum(), 1)) for i, n in enumerate(names)},
            "confusion_kmodel": cm.tolist(), "kmodel_int8_top1_agreement": figs["kmodel_int8_top1_agreement"],
            "settings": _settings(cfg), "strategy": strategy, "epochs_run": len(hist["phase"]),
            "best_epoch": hist["best_epoch"] + 1, "val_answer_sets": len(hist["val_answers"]),
            "trainable_weights": hist["trainable_weights"],
            "seconds": stage.seconds,
            "files": {"keras": staged.keras.name, "tflite": staged.tflite.name},
        }
        _finish(out, staged, verdict, rep)
    return rep, verdict


def _note_skipped(root, names, files, log):
    """Say which files in the class folders are not taken as photos (a notes.txt, a phone's .HEIC)."""
    from host_tools.pipeline.datasets import IMAGE_EXTS, files_below
    taken = {f for fs in files for f in fs}
    other = [str(f.relative_to(root)) for n in names for f in files_below(Path(root) / n) if f not in taken]
    if other:
        log("train: skipped %d file(s) that are not photos (%s): %s%s" % (
            len(other), " ".join(IMAGE_EXTS), ", ".join(other[:5]), ", ..." if len(other) > 5 else ""))


def _note_font(labels, log):
    """The board's LCD font draws ' '..'~' only (k210.font); say which labels will show small boxes there."""
    from host_tools.k210.font import FIRST, LAST
    odd = [n for n in labels if any(not FIRST <= ord(ch) <= LAST for ch in n)]
    if odd:
        log("train: note: the board's LCD font has only ASCII letters, digits and signs; %s will show small boxes "
            "for the other characters there (rename the folder or VOC name to change it)" % ", ".join(odd))


def _per_class(y, names):
    counts = np.bincount(np.asarray(y), minlength=len(names))
    return {n: int(c) for n, c in zip(names, counts)}


def _settings(cfg) -> dict:
    d = asdict(cfg)
    return json.loads(json.dumps(d, default=str))


# ------------------------------------------------------------------ detector

def _detector_labels(req):
    if req.labels:
        return list(req.labels)
    from host_tools.pipeline import datasets
    return datasets.detector_labels(req.data)


def _detector(req, name, out, log):
    from host_tools import kmodel
    from host_tools.pipeline import checker, datasets, detector, evaluate, quantize, train
    stage = Stages()
    stage("load")
    labels = _detector_labels(req)
    _note_font(labels, log)
    samples = datasets.load_detection_folder(req.data, labels)
    settings = dict(req.settings)               # the rest are DetectorConfig fields
    seed, val_fraction = settings.pop("seed", 0), settings.pop("val_fraction", 0.2)
    cfg = detector.default_config(samples, labels, **settings)
    images, boxes = detector.frames(samples, cfg, progress=req.progress)
    tr, va = detector.split(len(images), val_fraction, seed)
    log("train: detector for %s, %d photos for training, %d for validation; input %dx%d, anchors %s"
        % (", ".join(labels), len(tr), len(va), cfg.input_size[0], cfg.input_size[1], list(cfg.anchors)))
    pre = checker.check_keras(cfg.build(name))
    if not pre.ok:
        raise FlowError(pre.text())
    stage("train")
    x_tr, b_tr = images[tr], [boxes[i] for i in tr]
    x_va, b_va = images[va], [boxes[i] for i in va]
    model, hist = detector.train_detector(cfg, x_tr, b_tr, strategy=req.strategy, seed=seed, desc=name,
                                          val=(x_va, b_va))
    stage("quantize")
    tfl = quantize.to_int8_tflite(model, quantize.representative(train.to_input(x_tr), 200, seed))
    with _staged(out, name, model, tfl, "detector", labels, anchors=cfg.anchors, threshold=cfg.threshold,
                 nms=cfg.nms, framing=cfg.framing, stage=stage) as staged:
        stage("evaluate")
        val = {"float": detector.map50(detector.keras_predictor(model), x_va, b_va, cfg),
               "int8": detector.map50(detector.int8_predictor(tfl), x_va, b_va, cfg),
               "kmodel": detector.map50(detector.kmodel_predictor(kmodel.load(staged.kmodel)), x_va, b_va, cfg)}
        verdict = evaluate.detector_verdict(val["kmodel"])
        train.save_curves(hist, staged.folder / (name + "_curves.png"), name)
        stage(None)
        rep = {
            "name": name, "kind": "detector", "metric": "map50", "val": val, "useful": verdict.useful,
            "verdict": verdict.message, "labels": labels, "anchors": list(cfg.anchors), "threshold": cfg.threshold,
            "nms": cfg.nms, "data": str(req.data), "framing": cfg.framing,
            "photos": {"train": int(len(tr)), "val": int(len(va))},
            "boxes": {"train": int(sum(len(b) for b in b_tr)), "val": int(sum(len(b) for b in b_va))},
            "settings": _settings(cfg), "seconds": stage.seconds, "epochs_run": hist["epochs_run"],
            "best_epoch": hist["best_epoch"], "val_curve": dict(zip(hist["val_epochs"], hist["val_map50"])),
            "files": {"keras": staged.keras.name, "tflite": staged.tflite.name},
        }
        _finish(out, staged, verdict, rep)
    return rep, verdict


# ------------------------------------------------------------------ kmodel and manifest

@dataclass
class Staged:
    folder: Path          # a private folder in --out holding this run's files until the verdict
    keras: Path
    tflite: Path
    kmodel: Path
    manifest: Path


@contextlib.contextmanager
def _staged(out, name, model, tflite_bytes, kind, labels, anchors=(), threshold=0.5, nms=0.3, framing="crop",
            stage=None):
    """The Keras model and int8 tflite saved and compiled into a private folder in --out, where the run's plots go
    too; removed on the way out whatever happens. Only _finish moves files into --out, so an interrupted run
    leaves it as it was, and the kmodel and manifest join the rest only once the model has proved useful."""
    from host_tools.compiler import compile_file
    from host_tools.pipeline import report
    folder = out / (".%s.compiling" % name)
    made_out = not out.exists()
    if folder.exists():
        shutil.rmtree(folder)       # ours, left by a machine that went down mid-run
    folder.mkdir(parents=True)
    try:
        saved = report.save_model_files(folder, name, model, tflite_bytes)
        if stage:
            stage("compile")
        man = compile_file(saved["tflite"], folder, name, kind, labels, anchors=anchors, threshold=threshold,
                           nms=nms, framing=framing)
        yield Staged(folder, saved["keras"], saved["tflite"], folder / man.kmodel, folder / (name + ".json"))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if made_out and out.is_dir() and not any(out.iterdir()):
            out.rmdir()


def _finish(out, staged: Staged, verdict, rep):
    """Move this run's files into --out: the kmodel and manifest only for a useful model (the manifest last, so a
    manifest always has its kmodel), the rest in any case; then the report, which says which."""
    from host_tools.pipeline import report
    rep["files"].update({"kmodel": None, "manifest": None, "report": rep["name"] + "_report.md"})
    from host_tools import manifest as M
    model_files = {staged.manifest.name, staged.kmodel.name, M.big_endian_name(staged.kmodel.stem)}
    for f in sorted(p.name for p in staged.folder.iterdir()):
        if f not in model_files:
            staged.folder.joinpath(f).replace(out / f)
    if verdict.useful:
        for f in sorted(model_files - {staged.manifest.name}):
            if staged.folder.joinpath(f).exists():
                staged.folder.joinpath(f).replace(out / f)
        staged.manifest.replace(out / staged.manifest.name)
        rep["files"].update({"kmodel": staged.kmodel.name, "manifest": staged.manifest.name})
    else:
        # an earlier run's kmodel and manifest would no longer match the files beside them, and deploy --models
        # would put them on the board: they go (manifest first, so no manifest is left without its kmodel)
        for f in [staged.manifest.name] + sorted(model_files - {staged.manifest.name}):
            (out / f).unlink(missing_ok=True)
    report.write_train_report(out, rep["name"], rep)
