"""`compile --dataset DIR`: the activation ranges of a float tflite, measured on calibration images.

As ncc's `--dataset` (nncase v0.1 runs the float graph on each image and records every tensor's range): each image
is framed as the board's camera hands it to the KPU (host_tools.framing, the manifest's rule), the camera byte b
becomes the float model's input (b - Z) * S (1/255 and 0 unless --input-mean/--input-std say otherwise), LiteRT
runs the float tflite with every tensor kept, and each asked-for tensor's min and max over all images is its range
(TFLite's own min/max calibration).
"""
from pathlib import Path

import numpy as np

from host_tools import framing as F
from host_tools.compiler.errors import CompileError
from host_tools.k210 import rules as R


def images(folder, source, w, h, c, framing=F.DEFAULT) -> np.ndarray:
    """(N, c, h, w) uint8: the KPU's bytes for every image under folder (sorted, subfolders included)."""
    root = Path(folder)
    if not root.is_dir():
        raise CompileError("--dataset %s: no such folder (give a folder of images as the camera sees them)" % root,
                           source, rule=R.CALIBRATION)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in F.PHOTO_SUFFIXES
                   and not p.name.startswith("."))
    if not files:
        raise CompileError("--dataset %s: holds no images (%s)" % (root, ", ".join(sorted(F.PHOTO_SUFFIXES))),
                           source, rule=R.CALIBRATION)
    out = np.empty((len(files), c, h, w), np.uint8)
    for i, p in enumerate(files):
        try:
            out[i] = F.photo_input(F.read_photo(p), w, h, c, framing)
        except ValueError as e:
            raise CompileError("--dataset: %s" % e, source, rule=R.CALIBRATION) from None
    return out


def ranges(tflite_bytes, planar_u8, camera, tensors, source) -> dict:
    """{tensor index: (min, max)} of the float model's tensors over the images (N, c, h, w) uint8; camera:
    (scale, zero byte) turning a camera byte into the model's input."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType
    try:
        # the builtin kernels keep every intermediate tensor (a delegate would fuse them away)
        it = Interpreter(model_content=bytes(tflite_bytes), experimental_preserve_all_tensors=True, num_threads=1,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        it.allocate_tensors()
    except Exception as e:  # LiteRT raises RuntimeError/ValueError with its own text for a model it cannot run
        raise CompileError("LiteRT cannot run the float model to calibrate it: %s" % str(e).strip().splitlines()[0],
                           source, rule=R.CALIBRATION) from None
    inp = it.get_input_details()[0]["index"]
    scale, zero = camera
    lo = {t: np.inf for t in tensors}
    hi = {t: -np.inf for t in tensors}
    for x in planar_u8:
        it.set_tensor(inp, ((x.transpose(1, 2, 0).astype(np.float32) - zero) * np.float32(scale))[None])
        it.invoke()
        for t in tensors:
            v = it.get_tensor(t)
            lo[t] = min(lo[t], float(v.min()))
            hi[t] = max(hi[t], float(v.max()))
    return {t: (lo[t], hi[t]) for t in tensors}
