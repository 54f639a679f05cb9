"""Compiler figures: seconds to compile MobileNetV1 0.75 at 224 (1000 classes, K210 padding), and the time of one
frame on the KPU emulator as a ratio of LiteRT's int8 time on the same model's tflite, both measured here.

    .venv/bin/python bench/compiler.py [--alpha 0.75] [--size 224] [--frames 20]
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402


def build_tflite(alpha, size, path):
    import keras
    from host_tools.pipeline.arch import mobilenet_v1
    from host_tools.pipeline.quantize import to_int8_tflite
    keras.utils.set_random_seed(0)
    model = mobilenet_v1(size, alpha, classes=1000)
    rng = np.random.default_rng(0)
    calib = rng.random((8, size, size, 3), dtype=np.float32)
    Path(path).write_bytes(to_int8_tflite(model, calib))


def litert_step(path, resolver):
    """One LiteRT int8 frame at one thread, from a uint8 HWC image (the camera byte minus 128)."""
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(path), num_threads=1, experimental_op_resolver_type=resolver)
    it.allocate_tensors()
    index = it.get_input_details()[0]["index"]

    def invoke(f):
        # x - 128 as int8 is x with its top bit flipped: 0.02 ms, where an int16 round trip took 0.25 ms of the frame
        it.set_tensor(index, (f ^ np.uint8(0x80)).view(np.int8)[None])
        it.invoke()
    return invoke


def interleaved_times(steps: dict, frames, block: int = 5) -> dict:
    """Median (wall, CPU) seconds of each step over the frames, the steps taking turns every `block` frames: on a
    shared machine the load changes within seconds and each step must see the same load, while turns after every
    frame would time each step with the other's data in the caches. Both steps run on one thread, so the CPU time
    (this process's) is the figure the neighbours' load disturbs least."""
    times = {k: [] for k in steps}
    for b in range(0, len(frames), block):
        for k, step in steps.items():
            for f in frames[b:b + block]:
                t0, c0 = time.perf_counter(), time.process_time()
                step(f)
                times[k].append((time.perf_counter() - t0, time.process_time() - c0))
    return {k: tuple(float(x) for x in np.median(np.array(v), axis=0)) for k, v in times.items()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--alpha", type=float, default=0.75)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--frames", type=int, default=20)
    a = ap.parse_args(argv)
    from ai_edge_litert.interpreter import OpResolverType
    from host_tools.compiler import compile_tflite
    from host_tools.kmodel import run
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "mobilenet.tflite"
        build_tflite(a.alpha, a.size, src)
        t0 = time.perf_counter()
        c = compile_tflite(src)
        compile_s = time.perf_counter() - t0
        rng = np.random.default_rng(1)
        frames = [rng.integers(0, 256, (a.size, a.size, 3), dtype=np.uint8) for _ in range(a.frames)]
        xnnpack, builtin = (litert_step(src, r) for r in (OpResolverType.AUTO,
                                                           OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES))
        steps = {"emulator": lambda f: run(c.kmodel, f.transpose(2, 0, 1).copy()), "default (XNNPACK)": xnnpack}
        for step in (*steps.values(), builtin):     # warm-up: the emulator builds its per-layer plans once
            step(frames[0])
        t = interleaved_times(steps, frames)
        # the builtin kernels are a reference point only, timed on their own
        t.update(interleaved_times({"builtin kernels, no delegate": builtin}, frames))
        emu = t.pop("emulator")
    print("MobileNetV1 %g @ %d, 1000 classes: compile %.2f s (aim <= 30 s); kmodel %d bytes, %d layers"
          % (a.alpha, a.size, compile_s, len(c.data), len(c.kmodel.layers)))
    print("one frame on the KPU emulator (median of %d, in turns of 5 with LiteRT XNNPACK): %.4f s wall, %.4f s CPU"
          % (a.frames, *emu))
    for label, lt in t.items():
        print("  LiteRT int8, 1 thread, %s: %.4f s wall, %.4f s CPU -> emulator/LiteRT ratio %.2f (wall), %.2f (CPU) "
              "(aim <= 2)" % (label, *lt, emu[0] / lt[0], emu[1] / lt[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
