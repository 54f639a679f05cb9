"""kmodel V4 yolo20 against the V3 file on the dog photo: where the V4 file's boxes come from.

    .venv/bin/python bench/v4_yolo20.py

On ../shared/fixtures/kmodel (nncase-yolo20 and nncase-v4-yolo20, input dog_rgb888_planar_320x240.bin) it prints:
1. weights: per conv layer, the V4 file's effective weights ((q + arg_x / 2^shr_x) * norm_mul / 2^norm_shift, per
   output channel) against the V3 file's: the two files hold the same 8-bit weights up to one scale per layer (per
   channel for the last layer, whose V3 output is channel-wise);
2. per conv layer and file, the emulator's output against the exact real-number value of the layer's own
   registers on the same input (no floor, no rounding, no clamp): 0.5 output steps at most means rounding only;
3. the boxes (threshold 0.3, NMS 0.2) of: the emulator on each file; each file in exact arithmetic end to end
   (8-bit weights kept, activations never rounded); the V4 file under nncase v0.2's own simulator rules
   (segment: last x_start < bn; activation shift rounds half to even);
4. per class, each file's candidate boxes (anchor, grid cell, score) above 0.3;
5. the V4 file in the emulator's own integer stages with one change: its leaky activation entries rescaled to the
   network's slope 0.1 with 4 more bits (y_mul x16 or so, shift +4), every other byte of the file kept; and the
   widest acc * norm_mul each file's layers reach on this photo (the vendor envelope's proven width is 42 bits);
6. where each file's dog score comes from: the first k conv layers in the emulator's integer arithmetic, the rest
   exact (real-valued, clamped to 0..255), for growing k.
"""
import dataclasses
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FIX = ROOT.parent / "shared" / "fixtures" / "kmodel"
V3, V4 = FIX / "nncase-yolo20" / "yolo.kmodel", FIX / "nncase-v4-yolo20" / "yolo.kmodel"
DOG = FIX / "nncase-yolo20" / "dog_rgb888_planar_320x240.bin"

from host_tools.k210 import arith as A  # noqa: E402
from host_tools.kmodel import kpu, load, run  # noqa: E402
from host_tools.kmodel.yolo import region_decode  # noqa: E402
from host_tools.sim.provision import VOC, YOLO20_ANCHORS  # noqa: E402

SHOWN = (1, 6, 11)       # bicycle, car, dog: what the board showed with the V3 file
THRESHOLD, NMS = 0.3, 0.2


def conv_layers(m):
    return [L for L in m.layers if L.type_name in ("K210_CONV", "KPUConv2D")]


def effective_weights(a: A.ConvArith) -> np.ndarray:
    """(oc, taps) real weights in BN units per input step: what the layer multiplies each (x - zero point) by."""
    w = a.weights.astype(np.float64) + a.arg_x / 2.0 ** a.shr_x
    return w.reshape(w.shape[0], -1) * (a.norm_mul / 2.0 ** a.norm_shift)[:, None]


def exact_acc(a: A.ConvArith, x: np.ndarray) -> np.ndarray:
    """k210.arith stages 1-2 in float64, shifts as divisions."""
    c, h, w = x.shape
    if a.kernel == 3:
        xp = np.full((c, h + 2, w + 2), float(a.pad_value))
        xp[:, 1:-1, 1:-1] = x
        taps = [xp[:, dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)]
    else:
        taps = [x]
    wt = a.weights.astype(np.float64)
    oc = wt.shape[0]
    if a.depthwise:
        wd = wt.reshape(oc, -1)
        s, sx = sum(wd[:, t, None, None] * v for t, v in enumerate(taps)), sum(taps)
    else:
        cols = np.concatenate([v.reshape(c, -1) for v in taps])
        s = (wt.transpose(0, 2, 3, 1).reshape(oc, -1) @ cols).reshape(oc, h, w)
        sx = cols.sum(axis=0).reshape(1, h, w)
    cw = a.arg_w * a.weight_sums() / 2.0 ** a.shr_w + a.arg_add_total
    return s + a.arg_x * sx / 2.0 ** a.shr_x + cw[:, None, None]


def exact_layer(a: A.ConvArith, x: np.ndarray, extend: bool, leaky: float = None) -> np.ndarray:
    """Stages 1-5 in float64. extend: the table's first and last rising entries carry on past its flat ends
    (no saturation at 0 and 255 either), so nothing of the quantization but the weights remains. leaky: the
    rising entries below the last one get this fraction of its slope (the network's leaky ReLU, exactly)."""
    bn = exact_acc(a, x) * (a.norm_mul / 2.0 ** a.norm_shift)[:, None, None] + a.norm_add[:, None, None]
    i = np.zeros(bn.shape, int)
    for k in range(1, A.SEGMENTS):
        i = np.where(a.x_start[k] <= bn, k, i)
    rising = np.nonzero(a.y_mul)[0]
    if extend:
        i = np.clip(i, rising[0], rising[-1])
    slope = a.y_mul / 2.0 ** a.shift
    if leaky is not None and len(rising) > 1:
        slope = np.where(np.arange(A.SEGMENTS) < rising[-1], leaky * slope[rising[-1]], slope) * (a.y_mul != 0)
    y = (bn - a.x_start[i]) * slope[i] + a.bias[i]
    if not extend:
        y = np.clip(y, 0, 255)
    kind, win, stride = A.POOL_TYPES[a.pool_type]
    if kind == "none":
        return y
    c, h, w = y.shape
    if kind == "max" and stride == win:
        return y[:, :h // win * win, :w // win * win].reshape(c, h // win, win, w // win, win).max(axis=(2, 4))
    if kind == "max":              # 2x2 stride 1: the last row and column see only the map
        yp = np.pad(y, ((0, 0), (0, 1), (0, 1)), constant_values=-np.inf)
        return np.maximum.reduce([yp[:, dy:dy + h, dx:dx + w] for dy in range(2) for dx in range(2)])
    raise ValueError("pool type %d not used by these files" % a.pool_type)


def dequantized(m, q: np.ndarray) -> np.ndarray:
    """The file's last node on a real-valued map: V3 channel-wise dequantize, V4 dequantize."""
    f = m.layers[-1].fields
    if "quant_param" in f:
        zp, scale = f["quant_param"]
        return (q - zp) / scale
    return q * f["scales"].astype(np.float64)[:, None, None] + f["biases"].astype(np.float64)[:, None, None]


def exact_run(m, x: np.ndarray, leaky: float = None) -> np.ndarray:
    y = x.astype(np.float64)
    for L in conv_layers(m):
        y = exact_layer(kpu.layer_arith(L), y, extend=True, leaky=leaky)
    return dequantized(m, y)


def nncase_rules_run(m, x: np.ndarray) -> np.ndarray:
    """nncase v0.2's kpu_conv2d simulator (k210_kernels.h): the last segment with x_start < bn, and
    carry_shift<int64_t, true> (half to even) in the activation; everything else as k210.arith."""
    y = x.astype(np.int64)
    for L in conv_layers(m):
        a = kpu.layer_arith(L)
        bn = A.bn_map(a, A.accumulators(a, y))
        i = np.zeros(bn.shape, int)
        for k in range(1, A.SEGMENTS):
            i = np.where(a.x_start[k] < bn, k, i)
        v, s = (bn - a.x_start[i]) * a.y_mul[i], a.shift[i]
        s1 = np.maximum(s - 1, 0)
        whole, frac, half = v >> s, v & ((1 << s) - 1), np.where(s > 0, 1 << s1, 0)
        up = (frac > half) | ((frac == half) & (whole & 1 == 1))
        out = np.where(s > 0, whole + np.where(up, np.where(v < 0, -1, 1), 0), v)
        y = A.pool(np.clip(out + a.bias[i], 0, 255), a.pool_type)
    return dequantized(m, y.astype(np.float64))


def precise_leaky(a: A.ConvArith, extra: int = 4) -> A.ConvArith:
    """The layer with its rising activation entries at `extra` more bits and the entries below the last rising
    one at exactly 0.1 of its slope (x_start and bias kept): what a 16-bit leaky table at slope 0.1 would hold."""
    rising = np.nonzero(a.y_mul)[0]
    if len(rising) < 2:
        return a
    y_mul = a.y_mul * 2 ** extra
    top = y_mul[rising[-1]]
    y_mul = np.where((np.arange(A.SEGMENTS) < rising[-1]) & (a.y_mul != 0), np.round(0.1 * top), y_mul)
    return dataclasses.replace(a, y_mul=y_mul.astype(np.int64), shift=np.where(a.y_mul != 0, a.shift + extra, a.shift))


def integer_run(m, x: np.ndarray, change=lambda a: a) -> np.ndarray:
    """The file's conv layers through k210.arith's integer stages (each layer's numbers passed through change),
    then its last node."""
    y = x
    for L in conv_layers(m):
        y = A.forward(change(kpu.layer_arith(L)), y)
    return dequantized(m, y.astype(np.float64))


def widest_bn_product(m, x: np.ndarray) -> list:
    """Per conv layer, the signed bit width of the largest |acc * norm_mul| on input x."""
    y, bits = x, []
    for L in conv_layers(m):
        a = kpu.layer_arith(L)
        acc = A.accumulators(a, y)
        bits.append(int(np.abs(acc * a.norm_mul[:, None, None]).max()).bit_length() + 1)
        y = A.forward(a, y)
    return bits


def mixed_run(m, x: np.ndarray, k: int) -> np.ndarray:
    """The first k conv layers in integer arithmetic, the others exact (clamped, not rounded)."""
    y = x
    for i, L in enumerate(conv_layers(m)):
        a = kpu.layer_arith(L)
        y = A.forward(a, y) if i < k else exact_layer(a, y.astype(np.float64), extend=False)
    return dequantized(m, y.astype(np.float64))


def boxes(out, threshold: float = THRESHOLD) -> str:
    found = region_decode(np.asarray(out, np.float32), YOLO20_ANCHORS, threshold, NMS, 320, 240)
    return "; ".join("%s %d,%d,%d,%d %.3f" % (VOC[b.classid], b.x, b.y, b.w, b.h, b.value) for b in found)


def candidates(out, cls: int) -> list:
    """(score, anchor, row, col, x, y, w, h) of every cell and anchor scoring > THRESHOLD for class cls."""
    p = np.asarray(out, np.float64).reshape(5, 25, 7, 10)
    sig = 1 / (1 + np.exp(-p[:, [0, 1, 4]]))
    e = np.exp(p[:, 5:] - p[:, 5:].max(axis=1, keepdims=True))
    score = sig[:, 2] * e[:, cls] / e.sum(axis=1)
    anc = np.asarray(YOLO20_ANCHORS).reshape(5, 2)
    rows = []
    for a, r, c in zip(*np.nonzero(score > THRESHOLD)):
        bw, bh = np.exp(p[a, 2, r, c]) * anc[a, 0] * 32, np.exp(p[a, 3, r, c]) * anc[a, 1] * 240 / 7
        bx, by = (c + sig[a, 0, r, c]) * 32, (r + sig[a, 1, r, c]) * 240 / 7
        rows.append((score[a, r, c], a, r, c, int(bx - bw / 2), int(by - bh / 2), int(bw), int(bh)))
    return sorted(rows, reverse=True)


def main() -> int:
    if not (V3.is_file() and V4.is_file() and DOG.is_file()):
        print("v4_yolo20: skipped, fixtures not found under %s" % FIX)
        return 0
    m3, m4 = load(V3), load(V4)
    x = np.fromfile(DOG, np.uint8).reshape(3, 240, 320)

    print("1. effective weights, V4 against V3 (one scale per layer; per channel for layer 15):")
    row = []
    for L3, L4 in zip(conv_layers(m3), conv_layers(m4)):
        w3, w4 = effective_weights(kpu.layer_arith(L3)), effective_weights(kpu.layer_arith(L4))
        axis = 1 if L3 is conv_layers(m3)[-1] else None
        k = (w3 * w4).sum(axis=axis, keepdims=True) / (w3 * w3).sum(axis=axis, keepdims=True)
        row.append("%d:%.1e" % (L3.index, np.abs(w4 - k * w3).max() / np.abs(w4).max()))
    print("   largest residual / largest weight per layer: " + " ".join(row))

    print("2. emulator against the exact value of each layer's registers on the same input (output steps):")
    for name, m in (("V3", m3), ("V4", m4)):
        ins, outs = {}, {}
        run(m, x, taps=lambda L, i, o: (ins.__setitem__(L.index, np.array(i)), outs.__setitem__(L.index, np.array(o))))
        diff = [np.abs(exact_layer(kpu.layer_arith(L), ins[L.index].astype(np.float64), extend=False)
                       - outs[L.index]).max() for L in conv_layers(m)]
        print("   %s: largest difference over the 16 layers %.3f (layer %d)" % (name, max(diff), int(np.argmax(diff))))

    print("   leaky ReLU slope per layer (first rising entry / last):")
    for name, m in (("V3", m3), ("V4", m4)):
        row = []
        for L in conv_layers(m):
            a = kpu.layer_arith(L)
            s, r = a.y_mul / 2.0 ** a.shift, np.nonzero(a.y_mul)[0]
            row.append("%.4f" % (s[r[0]] / s[r[-1]]))
        print("   %s: %s" % (name, " ".join(row)))

    o3, o4 = run(m3, x)[0], run(m4, x)[0]
    i3, i4 = exact_run(m3, x, leaky=0.1), exact_run(m4, x, leaky=0.1)
    print("   exact arithmetic, leaky slope 0.1 in both files: outputs differ by %.4f rms, %.4f at most"
          % (np.sqrt(((i3 - i4) ** 2).mean()), np.abs(i3 - i4).max()))
    print("3. boxes at threshold %.1f, NMS %.1f:" % (THRESHOLD, NMS))
    for name, out in (("V3 emulator", o3), ("V4 emulator", o4), ("V3 exact arithmetic", exact_run(m3, x)),
                      ("V4 exact arithmetic", exact_run(m4, x)), ("V3 exact, leaky 0.1", i3), ("V4 exact, leaky 0.1", i4),
                      ("V4 nncase v0.2 sim rules", nncase_rules_run(m4, x))):
        print("   %-25s %s" % (name, boxes(out)))

    print("4. candidates (score, anchor, row, col, x, y, w, h) above %.1f:" % THRESHOLD)
    for cls in SHOWN:
        for name, out in (("V3", o3), ("V4", o4), ("V3 exact", exact_run(m3, x)), ("V4 exact", exact_run(m4, x)),
                          ("leaky .1", i4)):
            print("   %-8s %-8s: %s" % (VOC[cls], name, ", ".join("%.3f a%d (%d,%d) %d,%d,%d,%d" % c
                                                             for c in candidates(out, cls))))

    print("5. the V4 file with leaky tables at slope 0.1 (4 more bits), integer arithmetic:")
    same = integer_run(m4, x)
    print("   unchanged (check): differs from the emulator's output by %.1e at most (its float32 dequantize)"
          % np.abs(same - o4).max())
    precise = integer_run(m4, x, precise_leaky)
    for th in (0.5, THRESHOLD):
        print("   threshold %.1f: %s" % (th, boxes(precise, th)))
    for name, m in (("V3", m3), ("V4", m4)):
        print("   %s widest acc*norm_mul on this photo, bits per layer: %s"
              % (name, " ".join(str(b) for b in widest_bn_product(m, x))))

    print("6. the dog's best score with the first k conv layers in integer arithmetic, the rest exact:")
    for name, m in (("V3", m3), ("V4", m4)):
        print("   %s: %s" % (name, " ".join("k=%d %.3f" % (k, candidates(mixed_run(m, x, k), 11)[0][0])
                                          for k in (0, 1, 2, 3, 4, 8, 12, 16))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
