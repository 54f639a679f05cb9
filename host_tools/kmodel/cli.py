"""`python -m host_tools kmodel info FILE` and `python -m host_tools kmodel run FILE --input X [...]`."""
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from host_tools import framing as F
from host_tools import manifest
from host_tools import outdir

from host_tools.kmodel import board_time, infer_bin
from host_tools.kmodel.emulator import run as emulate
from host_tools.kmodel.netinfo import format_netinfo, netinfo
from host_tools.kmodel.reader import load
from host_tools.kmodel.yolo import Box, draw_boxes, region_decode

IMAGE_SUFFIXES = F.PHOTO_SUFFIXES


@dataclass(frozen=True)
class Input:
    """One model input and where it came from: for a photo, the part of it the input shows (photo pixels)."""
    name: str
    x: np.ndarray
    photo: np.ndarray = None        # (H, W, 3) uint8 of an image input
    region: tuple = None            # (x, y, w, h) of the photo the model input covers


def read_input(spec: str, model, framing=F.DEFAULT) -> Input:
    """The model input from an image file (what the board's camera hands the KPU when it looks at the image:
    framing.photo_input), a raw .bin of input bytes, or comma-separated numbers."""
    c, h, w = model.input_shape
    p = Path(spec)
    if p.suffix.lower() in IMAGE_SUFFIXES:
        if model.input_is_float:
            raise ValueError("%s takes %d floats, not an image" % (model.name, c))
        rgb = F.read_photo(p)
        return Input(spec, F.photo_input(rgb, w, h, c, framing), rgb,
                     F.photo_region(rgb.shape[1], rgb.shape[0], w, h, framing))
    if p.suffix.lower() == ".bin":
        raw = p.read_bytes()
        if model.input_is_float:
            if len(raw) != 4 * c:
                raise ValueError("%s: %d bytes, the model takes %d float32 (%d bytes)" % (p, len(raw), c, 4 * c))
            return Input(spec, np.frombuffer(raw, "<f4"))
        if len(raw) != c * h * w:
            raise ValueError("%s: %d bytes, the model takes %dx%dx%d = %d planar bytes" % (p, len(raw), c, h, w,
                                                                                          c * h * w))
        return Input(spec, np.frombuffer(raw, np.uint8).reshape(c, h, w))
    if "," in spec or _is_number(spec):
        vals = [float(v) for v in spec.split(",") if v.strip()]
        if model.input_is_float:
            return Input(spec, np.array(vals, np.float32))
        if len(vals) != c * h * w or not all(0 <= v <= 255 for v in vals):
            raise ValueError("the model takes %d uint8 values (%dx%dx%d planar)" % (c * h * w, c, h, w))
        return Input(spec, np.array(vals, np.uint8).reshape(c, h, w))
    if not p.exists():
        raise ValueError("--input %s: no such file or folder" % spec)
    raise ValueError("--input %r: give an image file, a folder of images, a .bin of input bytes, or "
                     "comma-separated numbers" % spec)


def input_specs(spec: str) -> list:
    """--input X: a folder stands for its images and those of its subfolders (sorted: a training folder of class
    folders gives every photo), anything else for itself."""
    p = Path(spec)
    if p.is_dir():
        files = sorted(str(f) for f in p.rglob("*") if f.suffix.lower() in IMAGE_SUFFIXES and f.is_file()
                       and not any(part.startswith(".") for part in f.relative_to(p).parts))
        if not files:
            raise ValueError("--input %s: the folder and its subfolders hold no images (%s)"
                             % (p, ", ".join(sorted(IMAGE_SUFFIXES))))
        return files
    return [spec]


def find_manifest(kmodel_path):
    """The manifest beside a kmodel (<name>.json naming it, as `compile` and `train` write it), or None."""
    p = Path(kmodel_path)
    for cand in [p.with_suffix(".json")] + sorted(p.parent.glob("*.json")):
        try:
            d = json.loads(cand.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(d, dict) and "kmodel_version" in d and p.name in (d.get("kmodel"), d.get("big_endian")):
            return manifest.load(cand)
    return None


def _is_number(s):
    try:
        float(s)
        return True
    except ValueError:
        return False


def read_labels(spec):
    if not spec:
        return []
    p = Path(spec)
    if p.is_file():
        return [ln.strip() for ln in p.read_text().splitlines() if ln.strip()]
    return [s.strip() for s in spec.split(",")]


def _floats(spec):
    return [float(v) for v in spec.split(",") if v.strip()]


def cmd_info(args) -> int:
    if args.spi_speed <= 0:
        from host_tools.command import UsageError
        raise UsageError("--spi-speed %d: give kpu.load_flash's SPI clock in Hz, e.g. 80000000" % args.spi_speed)
    model = load(args.file)
    info, pred = netinfo(model), board_time.predict(model, args.spi_speed)
    if args.json:
        d = dataclasses.asdict(info)
        d["envelope"] = {str(i): [str(e) for e in bad] for i, bad in info.envelope.items()}
        d.update(predicted_ms=pred.as_dict(), predicted_layer_ms=[round(t, 3) for t in pred.layers])
        print(json.dumps(d))
    else:
        print(format_netinfo(info))
        print(board_time.format_prediction(pred, args.spi_speed))
    return 0


@dataclass(frozen=True)
class RunSettings:
    """What decodes the outputs: the command line's options over the manifest's fields over the defaults."""
    labels: list
    anchors: list
    threshold: float
    nms: float
    framing: str
    top: int


def run_settings(args, man) -> RunSettings:
    def pick(given, field, default):
        if given is not None:
            return given
        return getattr(man, field) if man is not None else default
    labels = read_labels(args.labels) if args.labels else (list(man.labels) if man is not None else [])
    anchors = _floats(args.anchors) if args.anchors else (list(man.anchors) if man is not None else [])
    return RunSettings(labels, anchors, pick(args.threshold, "threshold", 0.5), pick(args.nms, "nms", 0.3),
                       pick(args.framing, "framing", F.DEFAULT), args.top or 5)


def result(model, inp: Input, outs, st: RunSettings) -> dict:
    """{"input", "top", "boxes"}: the top classes of a classifier, the boxes of a detector (in the pixels of the
    input image: a photo's own, or the model input's for raw bytes)."""
    out = {"input": inp.name, "top": [], "boxes": []}
    if st.anchors:
        o = outs[0]
        if o.dtype != np.float32 or o.ndim != 3:
            raise ValueError("anchors need a float (C, H, W) output; this model gives %s %s" % (o.dtype, o.shape))
        c, h, w = model.input_shape
        rx, ry, rw, rh = inp.region if inp.region is not None else (0, 0, w, h)
        for b in region_decode(o, st.anchors, st.threshold, st.nms, w, h):
            out["boxes"].append({"label": _label(st.labels, b.classid), "score": float(b.value),
                                 "x": int(round(rx + b.x * rw / w)), "y": int(round(ry + b.y * rh / h)),
                                 "w": int(round(b.w * rw / w)), "h": int(round(b.h * rh / h))})
        return out
    flat = outs[0].reshape(-1).astype(np.float64)
    for j in np.argsort(-flat, kind="stable")[:min(st.top, flat.size)]:
        out["top"].append({"label": _label(st.labels, j), "score": float(flat[j])})
    return out


def _label(labels, i):
    return labels[i] if i < len(labels) else str(int(i))


def cmd_run(args) -> int:
    model = load(args.file)
    man = find_manifest(args.file)
    st = run_settings(args, man)
    specs = input_specs(args.input)
    if args.output_dir:
        outdir.claim(args.output_dir, ("*.bin",), force=args.force, option="--output-dir", command="kmodel run")
        names = [infer_bin.bin_name(spec, i) for i, spec in enumerate(specs)]
        if len(set(names)) != len(names):
            raise ValueError("--output-dir: two inputs would both write %s"
                             % next(n for n in names if names.count(n) > 1))
    for i, spec in enumerate(specs):
        inp = read_input(spec, model, st.framing)
        outs = emulate(model, inp.x)
        if args.output_dir:
            infer_bin.write(args.output_dir, spec, i, outs)
        if args.json:
            print(json.dumps(result(model, inp, outs, st)), flush=True)
            continue
        if len(specs) > 1:
            print("== %s" % spec)
        _print_text(model, inp, outs, st, args, png=args.png if len(specs) == 1 else None)
    return 0


def _print_text(model, inp, outs, st, args, png):
    if st.anchors:
        r = result(model, inp, outs, st)
        for b in r["boxes"]:
            print("%s %.4f x=%d y=%d w=%d h=%d" % (b["label"], b["score"], b["x"], b["y"], b["w"], b["h"]))
        if not r["boxes"]:
            print("no boxes above threshold %.2f" % st.threshold)
        if png is None and inp.photo is not None and args.png is None:
            png = Path(inp.name).stem + "_boxes.png"
        if png:
            _draw(model, inp, r["boxes"], png)
            print("boxes drawn: %s" % png)
        return
    labels = st.labels if (args.labels or st.labels) else []
    for i, (o, code) in enumerate(zip(outs, model.output_typecodes)):
        flat = o.reshape(-1)
        print("output %d: shape %s typecode '%s'" % (i, "x".join(map(str, o.shape)), code))
        if labels or args.top:
            k = min(args.top or 5, flat.size)
            for j in np.argsort(-flat.astype(np.float64), kind="stable")[:k]:
                print("  %-20s %s" % (_label(labels, j), _fmt(flat[j])))
        else:
            print("  " + ", ".join(_fmt(v) for v in flat[:args.max_values])
                  + (" ... (%d values)" % flat.size if flat.size > args.max_values else ""))


def _draw(model, inp, boxes, png):
    """The boxes on the input image (the photo, or the model input for raw bytes)."""
    import io

    from host_tools.files import write_atomic
    c, h, w = model.input_shape
    if inp.photo is not None:
        rgb = inp.photo
    else:
        rgb = inp.x.transpose(1, 2, 0) if c == 3 else np.repeat(inp.x.reshape(h, w, 1), 3, axis=2)
    shown = [Box(b["x"], b["y"], b["w"], b["h"], b["score"], i, 0, 0) for i, b in enumerate(boxes)]
    buf = io.BytesIO()
    draw_boxes(rgb, shown, [b["label"] for b in boxes]).save(buf, format="PNG")
    write_atomic(png, buf.getvalue())


def _fmt(v):
    return "%.6f" % v if isinstance(v, (float, np.floating)) else str(int(v))


def add_arguments(ap):
    sub = ap.add_subparsers(dest="action", required=True, metavar="{info,run}")
    p = sub.add_parser("info", help="layer summary and the memory the model needs")
    p.add_argument("file", help="the .kmodel file")
    p.add_argument("--json", action="store_true", help="the summary as one JSON object, with predicted_ms: "
                                                       "{ram, load_flash_dual, load_flash_single, load}")
    p.add_argument("--spi-speed", type=int, default=board_time.LOAD_FLASH_SPI_HZ,
                   help="kpu.load_flash's spi_speed for the predictions")
    p.set_defaults(fn=cmd_info)
    p = sub.add_parser("run", help="run the model on one input")
    p.add_argument("file", help="the .kmodel file")
    p.add_argument("--input", required=True, help="image file (seen as the board's camera sees it), folder of "
                                                  "images, raw .bin of input bytes, or comma-separated numbers")
    p.add_argument("--json", action="store_true", help="one JSON object per input per line: "
                                                       "{input, top: [{label, score}], boxes: [{label, score, x, y, "
                                                       "w, h}]}")
    p.add_argument("--labels", help="comma-separated names or a labels file (default: the manifest's)")
    p.add_argument("--top", type=int, default=0, help="the top K outputs (default 5 with labels, 0: all values)")
    p.add_argument("--max-values", type=int, default=64, help="values to print without labels")
    p.add_argument("--anchors", help="YOLOv2: comma-separated anchors (2 per anchor; default: the manifest's); "
                                     "prints boxes")
    p.add_argument("--threshold", type=float, help="default: the manifest's, else 0.5")
    p.add_argument("--nms", type=float, help="default: the manifest's, else 0.3")
    p.add_argument("--framing", choices=F.FRAMINGS, help="how an image becomes the input (default: the "
                                                        "manifest's, else crop)")
    p.add_argument("--png", help="where to write the image with boxes (default <input>_boxes.png)")
    p.add_argument("--output-dir", metavar="DIR", help="also write each input's outputs to DIR/<input name>.bin as "
                                                     "`ncc infer` does: float32 NCHW, one output after the other (default: not written)")
    p.add_argument("--force", action="store_true", help="write into --output-dir even when it holds other files")
    p.set_defaults(fn=cmd_run)


def run(args) -> int:
    return args.fn(args)
