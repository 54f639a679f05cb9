"""`python -m host_tools kmodel info FILE` and `python -m host_tools kmodel run FILE --input X [...]`."""
import argparse
import sys
from pathlib import Path

import numpy as np

from host_tools.kmodel.errors import KmodelError
from host_tools.kmodel.emulator import run
from host_tools.kmodel.netinfo import format_netinfo, netinfo
from host_tools.kmodel.reader import load
from host_tools.kmodel.yolo import draw_boxes, region_decode

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"}


def read_input(spec: str, model):
    """The model input from an image file, a raw .bin of input bytes, or comma-separated numbers."""
    c, h, w = model.input_shape
    p = Path(spec)
    if p.suffix.lower() in IMAGE_SUFFIXES:
        if model.input_is_float:
            raise ValueError("%s takes %d floats, not an image" % (model.name, c))
        from PIL import Image
        with Image.open(p) as im:
            im = im.convert("RGB" if c == 3 else "L").resize((w, h), Image.BILINEAR)
            a = np.asarray(im, np.uint8)
        return a.transpose(2, 0, 1).copy() if c == 3 else a.reshape(1, h, w)
    if p.suffix.lower() == ".bin":
        raw = p.read_bytes()
        if model.input_is_float:
            if len(raw) != 4 * c:
                raise ValueError("%s: %d bytes, the model takes %d float32 (%d bytes)" % (p, len(raw), c, 4 * c))
            return np.frombuffer(raw, "<f4")
        if len(raw) != c * h * w:
            raise ValueError("%s: %d bytes, the model takes %dx%dx%d = %d planar bytes" % (p, len(raw), c, h, w,
                                                                                          c * h * w))
        return np.frombuffer(raw, np.uint8).reshape(c, h, w)
    if "," in spec or _is_number(spec):
        vals = [float(v) for v in spec.split(",") if v.strip()]
        if model.input_is_float:
            return np.array(vals, np.float32)
        if len(vals) != c * h * w or not all(0 <= v <= 255 for v in vals):
            raise ValueError("the model takes %d uint8 values (%dx%dx%d planar)" % (c * h * w, c, h, w))
        return np.array(vals, np.uint8).reshape(c, h, w)
    raise ValueError("--input %r: give an image file, a .bin of input bytes, or comma-separated numbers" % spec)


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
    print(format_netinfo(netinfo(load(args.file))))
    return 0


def cmd_run(args) -> int:
    model = load(args.file)
    x = read_input(args.input, model)
    outs = run(model, x)
    labels = read_labels(args.labels)
    if args.anchors:
        out = outs[0]
        if out.dtype != np.float32 or out.ndim != 3:
            raise ValueError("--anchors needs a float (C, H, W) output; this model gives %s %s"
                             % (out.dtype, out.shape))
        c, h, w = model.input_shape
        boxes = region_decode(out, _floats(args.anchors), args.threshold, args.nms, w, h)
        for b in boxes:
            name = labels[b.classid] if b.classid < len(labels) else str(b.classid)
            print("%s %.4f x=%d y=%d w=%d h=%d" % (name, b.value, b.x, b.y, b.w, b.h))
        if not boxes:
            print("no boxes above threshold %.2f" % args.threshold)
        png = Path(args.png or Path(args.input).stem + "_boxes.png")
        rgb = x.transpose(1, 2, 0) if c == 3 else np.repeat(x.reshape(h, w, 1), 3, axis=2)
        from host_tools.files import write_atomic
        import io
        buf = io.BytesIO()
        draw_boxes(rgb, boxes, labels).save(buf, format="PNG")
        write_atomic(png, buf.getvalue())
        print("boxes drawn: %s" % png)
        return 0
    for i, (o, code) in enumerate(zip(outs, model.output_typecodes)):
        flat = o.reshape(-1)
        print("output %d: shape %s typecode '%s'" % (i, "x".join(map(str, o.shape)), code))
        if labels or args.top:
            k = min(args.top or 5, flat.size)
            for j in np.argsort(-flat.astype(np.float64), kind="stable")[:k]:
                name = labels[j] if j < len(labels) else str(j)
                print("  %-20s %s" % (name, _fmt(flat[j])))
        else:
            print("  " + ", ".join(_fmt(v) for v in flat[:args.max_values])
                  + (" ... (%d values)" % flat.size if flat.size > args.max_values else ""))
    return 0


def _fmt(v):
    return "%.6f" % v if isinstance(v, (float, np.floating)) else str(int(v))


def parser():
    ap = argparse.ArgumentParser(prog="python -m host_tools kmodel",
                                 description="inspect or execute a kmodel V3 file on the KPU emulator")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("info", help="layer summary and the memory the model needs")
    p.add_argument("file")
    p.set_defaults(fn=cmd_info)
    p = sub.add_parser("run", help="run the model on one input")
    p.add_argument("file")
    p.add_argument("--input", required=True, help="image file, raw .bin of input bytes, or comma-separated numbers")
    p.add_argument("--labels", help="comma-separated names or a labels file (one per line)")
    p.add_argument("--top", type=int, default=0, help="print the top K outputs (default 5 with --labels)")
    p.add_argument("--max-values", type=int, default=64, help="values to print without --labels")
    p.add_argument("--anchors", help="YOLOv2: comma-separated anchors (2 per anchor); prints boxes")
    p.add_argument("--threshold", type=float, default=0.5)
    p.add_argument("--nms", type=float, default=0.3)
    p.add_argument("--png", help="where to write the image with boxes (default <input>_boxes.png)")
    p.set_defaults(fn=cmd_run)
    return ap


def main(argv) -> int:
    args = parser().parse_args(list(argv[1:]))
    try:
        return args.fn(args)
    except (KmodelError, ValueError, OSError) as e:
        print("error: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(["kmodel"] + sys.argv[1:]))
