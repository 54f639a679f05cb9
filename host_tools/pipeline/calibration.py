"""Activation ranges for int8 quantization: minmax (TFLite's own), percentile (clip the rare extremes) and kld
(TensorRT-style entropy calibration, as Maix-EMC offers it).

How they reach TFLite's converter: the converter calibrates (`_experimental_calibrate_only`: a float model whose
activation tensors carry the min/max seen on the representative data), we replace those min/max with the clipped
range of each method, and TFLite's own MLIR quantizer then does everything else (scales, zero points, int32
biases, requantization, int8 input/output), exactly as the normal conversion does with its min/max. The other
ways were worse: fake-quant ranges would mean editing the Keras graph, and rewriting a finished int8 model's
activation scales would mean redoing the quantizer's bias and multiplier arithmetic by hand.

The histograms are gathered by running that calibrated float model in LiteRT with every tensor kept, over the same
representative samples. minmax keeps TFLite's default conversion untouched.
"""
from dataclasses import dataclass

import numpy as np

METHODS = ("minmax", "percentile", "kld")
DEFAULT = "minmax"           # chosen from bench/calibration.py's figures (README "Calibration")
PERCENTILE = 99.99           # percentile: keep this share of each activation's values inside the range
BINS = 2048                  # histogram resolution of one side of an activation's range (TensorRT's)


class CalibrationError(ValueError):
    """A calibration method or setting that cannot be applied; the message names it."""


@dataclass(frozen=True)
class Calibration:
    method: str = DEFAULT
    percentile: float = PERCENTILE

    def __post_init__(self):
        if self.method not in METHODS:
            raise CalibrationError("--calibration must be one of %s, got %r" % (", ".join(METHODS), self.method))
        if not 50.0 < self.percentile <= 100.0:
            raise CalibrationError("--percentile must be in (50, 100], got %r" % self.percentile)


def convert(converter, samples, cal: Calibration) -> bytes:
    """Run a TFLiteConverter set up for full-integer quantization (representative_dataset, int8 in/out), with the
    activation ranges of `cal` computed on `samples` (the representative inputs, float (N, ...))."""
    if cal.method == "minmax":
        return converter.convert()
    import tensorflow as tf
    from tensorflow.lite.python import convert as tf_convert
    from tensorflow.lite.python import lite as tf_lite
    converter._experimental_calibrate_only = True
    calibrated = bytearray(converter.convert())
    ranges = recorded_ranges(calibrated)
    hists = histograms(bytes(calibrated), samples, ranges)
    for idx, (lo, hi) in ranges.items():
        new = clipped_range(hists[idx], lo, hi, cal)
        set_range(calibrated, idx, *new)
    quantized = tf_convert.mlir_quantize(bytes(calibrated), False, input_data_type=tf.int8,
                                         output_data_type=tf.int8)
    return tf_lite._deduplicate_readonly_buffers(quantized)   # as the converter's own last step


def _tensors(model_bytes):
    import tflite
    g = tflite.Model.GetRootAsModel(model_bytes, 0).Subgraphs(0)
    return g, [g.Tensors(i) for i in range(g.TensorsLength())]


def recorded_ranges(calibrated) -> dict:
    """{tensor index: (min, max)} of the activations the calibrator measured (the model's inputs excluded: their
    range is the camera byte's, fixed)."""
    g, tensors = _tensors(bytes(calibrated))
    inputs = set(g.InputsAsNumpy().tolist())
    out = {}
    for i, t in enumerate(tensors):
        q = t.Quantization()
        if i in inputs or q is None or q.MinLength() != 1 or q.MaxLength() != 1:
            continue
        lo, hi = float(q.Min(0)), float(q.Max(0))
        if hi > lo:
            out[i] = (lo, hi)
    return out


def set_range(calibrated: bytearray, idx: int, lo: float, hi: float):
    """Overwrite one tensor's recorded min/max in place (the flatbuffer's float vectors are views of the bytes)."""
    _, tensors = _tensors(calibrated)
    q = tensors[idx].Quantization()
    q.MinAsNumpy()[0], q.MaxAsNumpy()[0] = lo, hi


def edges(lo, hi):
    """Histogram bin edges of an activation: [0, hi] for a non-negative one, [-a, a] (2 x BINS) for a signed one,
    so the entropy method can fold it into |x|."""
    if lo >= 0:
        return np.linspace(0.0, hi, BINS + 1)
    a = max(-lo, hi)
    return np.linspace(-a, a, 2 * BINS + 1)


def histograms(calibrated_bytes, samples, ranges) -> dict:
    """{tensor index: counts per bin of edges(range)} over the samples, from LiteRT with every tensor kept."""
    from ai_edge_litert.interpreter import Interpreter

    from host_tools.pipeline import quiet
    with quiet.hushed():
        it = Interpreter(model_content=calibrated_bytes, experimental_preserve_all_tensors=True, num_threads=1)
        it.allocate_tensors()
    inp = it.get_input_details()[0]["index"]
    bins = {i: edges(lo, hi) for i, (lo, hi) in ranges.items()}
    counts = {i: np.zeros(len(e) - 1, dtype=np.int64) for i, e in bins.items()}
    for x in np.asarray(samples, dtype=np.float32):
        it.set_tensor(inp, x[None])
        it.invoke()
        for i, e in bins.items():
            v = it.get_tensor(i).ravel()
            k = np.clip(((v - e[0]) / (e[-1] - e[0]) * (len(e) - 1)).astype(np.int64), 0, len(e) - 2)
            counts[i] += np.bincount(k, minlength=len(e) - 1)
    return {i: (counts[i], bins[i]) for i in bins}


def clipped_range(hist, lo, hi, cal: Calibration) -> tuple:
    """The (min, max) a method gives one activation, from its histogram (counts, edges) and recorded range."""
    counts, e = hist
    if cal.method == "minmax" or counts.sum() == 0:
        return lo, hi
    if cal.method == "percentile":
        return percentile_range(counts, e, lo, hi, cal.percentile)
    if lo >= 0:
        return lo, min(hi, entropy_threshold(counts, e[1:], levels=256))
    half = len(counts) // 2          # fold the signed histogram into |x|
    magnitude = counts[half:] + counts[:half][::-1]
    t = entropy_threshold(magnitude, e[half + 1:], levels=128)
    return max(lo, -t), min(hi, t)


def percentile_range(counts, e, lo, hi, p) -> tuple:
    cdf = np.cumsum(counts) / counts.sum()
    top = float(e[1:][np.searchsorted(cdf, p / 100.0)])
    new_hi = min(hi, max(top, 0.0))
    if lo >= 0:
        return lo, new_hi
    bottom = float(e[:-1][np.searchsorted(cdf, 1.0 - p / 100.0)])
    return max(lo, min(bottom, 0.0)), new_hi


def entropy_threshold(counts, upper_edges, levels) -> float:
    """Entropy calibration (TensorRT's, in MXNet's form) on a histogram of |x| (or of x >= 0): the clip threshold
    whose `levels`-level quantization of the clipped distribution loses the least information (KL divergence).
    The tail beyond a candidate threshold folds into its last bin; empty bins get a tiny mass (eps) so that no
    candidate has an infinite divergence. As TensorRT does, the first bin takes the second's count (ReLU's spike at
    0 says nothing about the range)."""
    h = counts.astype(np.float64).copy()
    if len(h) > 1:
        h[0] = h[1]
    if h.sum() == 0 or len(h) <= levels:
        return float(upper_edges[-1])
    tail = h.sum() - np.cumsum(h)               # tail[i - 1]: the counts beyond bin i - 1
    best, best_i = np.inf, len(h)
    for i in range(levels, len(h) + 1):
        p = h[:i].copy()
        p[-1] += tail[i - 1]
        nz = p > 0
        coarse = (np.arange(i) * levels) // i  # which of the `levels` bins each fine bin falls into
        sums = np.bincount(coarse, weights=h[:i], minlength=levels)
        used = np.bincount(coarse[nz], minlength=levels)
        q = np.where(nz, sums[coarse] / np.maximum(used[coarse], 1), 0.0)
        kl = _kl(_smooth(p), _smooth(q))
        if kl <= best:                          # ties: the wider range, as TensorRT's last argmin
            best, best_i = kl, i
    return float(upper_edges[best_i - 1])


EPS = 1e-4


def _smooth(d):
    """Move EPS of mass onto each empty bin, taken evenly from the others (MXNet's _smooth_distribution)."""
    zero = d == 0
    n_zero, n_nonzero = int(zero.sum()), int((~zero).sum())
    if n_nonzero == 0:
        return d
    return d + np.where(zero, EPS, -EPS * n_zero / n_nonzero)


def _kl(p, q) -> float:
    p, q = p / p.sum(), q / q.sum()
    m = p > 0
    if np.any(q[m] <= 0):
        return np.inf
    return float(np.sum(p[m] * np.log(p[m] / q[m])))
