"""KPU emulator speed: yolo20 frames per second, and conv multiply-accumulates per second as a fraction of this
machine's float64 matrix-multiply peak, both measured in this run on one core (BLAS limited to one thread so
the ratio does not depend on what else the machine is doing).

    .venv/bin/python bench/kpu_emulator.py [--seconds 4]
"""
import os

for _v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIX = ROOT.parent / "shared" / "fixtures" / "kmodel" / "nncase-yolo20"
FIX4 = ROOT.parent / "shared" / "fixtures" / "kmodel" / "nncase-v4-yolo20" / "yolo.kmodel"     # kmodel V4

from host_tools.kmodel import load, run  # noqa: E402
from host_tools.kmodel.emulator import plans  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=6.0, help="time budget of the interleaved rounds")
    args = ap.parse_args(argv)
    if not (FIX / "yolo.kmodel").is_file():
        print("kpu_emulator: skipped, fixture %s not found" % (FIX / "yolo.kmodel"))
        return 0
    m = load(FIX / "yolo.kmodel")
    x = np.fromfile(FIX / "dog_rgb888_planar_320x240.bin", np.uint8)
    conv = plans(m)
    run(m, x)                                                   # builds the plans (tables, weights)
    m4 = load(FIX4) if FIX4.is_file() else None
    if m4 is not None:
        run(m4, x)
    a, b = np.random.rand(1024, 1024), np.random.rand(1024, 1024)
    conv = {i: step.fast.p for i, step in conv.items()}          # kpu_fast.ConvParams per conv layer
    gemms = [(np.random.rand(p.weights.shape[1], p.weights.shape[0]), np.random.rand(p.weights.shape[0],
                                                                                     p.in_shape[1] * p.in_shape[2]))
             for p in conv.values() if not p.depthwise]
    # Interleaved rounds, keeping each quantity's least disturbed time: the machine is shared, and a
    # ratio of two numbers taken at different moments would measure the neighbours.
    peak_t = frame = frame4 = gemm64_t = float("inf")
    per_layer = {}

    def trace(L, dt):
        per_layer[L.index] = min(per_layer.get(L.index, float("inf")), dt)
    end = time.perf_counter() + args.seconds
    rounds = 0
    while time.perf_counter() < end or rounds < 3:
        peak_t = min(peak_t, timed(lambda: a @ b))
        frame = min(frame, timed(lambda: run(m, x)))
        if m4 is not None:
            frame4 = min(frame4, timed(lambda: run(m4, x)))
        run(m, x, trace=trace)
        gemm64_t = min(gemm64_t, sum(timed(lambda: w @ c) for w, c in gemms))
        rounds += 1
    peak = 1024 ** 3 / peak_t
    conv_t = sum(per_layer[i] for i in conv)

    def macs_of(p):
        ic, ih, iw = p.in_shape
        return p.out_shape[0] * (1 if p.depthwise else ic) * p.k * p.k * ih * iw
    macs = sum(macs_of(p) for p in conv.values())
    # a deferred depthwise layer is computed inside the 1x1 layer after it (kpu_ram.Deferred): the split by kind
    # leaves such pairs out
    deferred = m.__dict__["_deferred"]
    paired = deferred | {m.layers[k + 1].index for k, L in enumerate(m.layers) if L.index in deferred}
    gemm_macs = sum(macs_of(p) for i, p in conv.items() if not p.depthwise and i not in paired)
    dw_macs = sum(macs_of(p) for i, p in conv.items() if p.depthwise and i not in paired)
    dw_t = sum(per_layer[i] for i, p in conv.items() if p.depthwise and i not in paired)
    print("kpu_emulator: yolo20 (320x240, 16 conv layers, %.0f M MACs) %.2f frames/s (%.1f ms/frame), 1 core"
          % (macs / 1e6, 1 / frame, frame * 1e3))
    if m4 is not None:
        print("kpu_emulator: yolo20 kmodel V4 (nncase v0.2's file, 16 KPU conv nodes + dequantize) %.2f frames/s "
              "(%.1f ms/frame) = %.2f x the V3 file's rate, same run" % (1 / frame4, frame4 * 1e3, frame / frame4))
    print("kpu_emulator: conv layers %.2f GMAC/s = %.2f x float64 matmul peak (%.2f GMAC/s, 1024^3, same run)"
          % (macs / conv_t / 1e9, macs / conv_t / peak, peak / 1e9))
    gemm_layers_t = sum(per_layer[i] for i, p in conv.items() if not p.depthwise and i not in paired)
    all_gemm_macs = sum(macs_of(p) for p in conv.values() if not p.depthwise)        # what the float64 GEMMs do
    print("kpu_emulator: GEMM layers %.2f x peak (float64 GEMMs alone at their shapes reach %.2f x; the emulator"
          " runs onnxruntime's integer GEMM, then its compiled BN and activation stages); depthwise layers"
          " (%.0f%% of MACs, compiled, no GEMM) %.2f x peak; %d layers computed within the next one left out of"
          " this split; %d rounds"
          % (gemm_macs / gemm_layers_t / peak, all_gemm_macs / gemm64_t / peak, 100 * dw_macs / macs,
             dw_macs / dw_t / peak, len(paired), rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
