"""The K210 cost model against each published Maix Bit figure (host_tools.k210.cost.PUBLISHED): model, source,
published, predicted, ratio to the published middle (or 'inside' the published range); then Sipeed topic 691's
"MobileNet v1 1.0 @ QVGA is about 20~30fps" under each reading of it, and why none is held (docs/board-time.md).

    .venv/bin/python bench/board_time.py
"""
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host_tools.k210 import cost, kpu  # noqa: E402
from host_tools.kmodel.board_time import figure_ms, predict  # noqa: E402
from host_tools.pipeline import calibration_models as cm  # noqa: E402
from host_tools.pipeline.arch import MOBILENET_BLOCKS  # noqa: E402
from host_tools.sim.demo_loop import yolo_loop_fps  # noqa: E402

YOLO20 = ROOT.parent / "shared" / "fixtures" / "kmodel" / "nncase-yolo20" / "yolo.kmodel"


def mobilenet_convs(alpha: float, h: int, w: int, classes: int = 1000):
    """MobileNetV1's K210_CONV layers as our compiler writes them: (in_c, in_h, in_w, out_c, depthwise, weight
    bytes), each at its input size (a stride 2 is the sampling pool of the conv before), the classifier a 1x1 conv
    on a 4x4 map."""
    c = int(32 * alpha)
    convs = [(3, h, w, c, False, 27 * c)]
    h, w = h // 2, w // 2
    for filters, stride in MOBILENET_BLOCKS:
        f = int(filters * alpha)
        convs += [(c, h, w, c, True, 9 * c), (c, h, w, f, False, c * f)]
        c, h, w = f, h // stride, w // stride
    return convs + [(c, 4, 4, classes, False, c * classes)]


def convs_ms(convs, runtime_us: float = cost.RUNTIME_LAYER_US, kpu_hz: float = cost.KPU_HZ) -> float:
    """The cost model's conv time (ms) with another per-layer runtime or KPU clock (the compute scales with it)."""
    return sum(cost.kpu_conv_us(ic, h, w, oc, dw, wb) - cost.RUNTIME_LAYER_US for ic, h, w, oc, dw, wb in convs) \
        * cost.KPU_HZ / kpu_hz / 1e3 + len(convs) * runtime_us / 1e3


def kpu_ram_needs(convs) -> list:
    """KPU RAM bytes each layer needs: its input and output maps (the output sampled where the next layer is
    smaller)."""
    out = []
    for k, (ic, h, w, oc, dw, _) in enumerate(convs):
        nh, nw = convs[k + 1][1:3] if k + 1 < len(convs) else (h, w)
        out.append(64 * (kpu.ram_rows(ic, h, w) + kpu.ram_rows(oc, min(h, nh), min(w, nw))))
    return out


def _split(model):
    """(conv layers, predicted ms from RAM without MaixPy's per-layer runtime) of a compiled model."""
    n = sum(L.regs is not None for L in model.layers)
    return n, predict(model).ram - n * cost.RUNTIME_LAYER_US / 1e3


def topic_691_readings(mb075, face) -> None:
    """Topic 691's MobileNetV1 1.0 claim (20-30 fps = 33-50 ms) under each reading: the input as stated (QVGA) or
    the 224x224 window MaixPy's MobileNet demos take from the QVGA frame; MaixPy's fitted per-layer runtime, the
    SDK's 0.1-0.3 ms (cost.py), or the KPU at the 500 MHz turbo the same post names. Then the per-layer runtime and
    compute scale that both measured forwards (mb075: MobileNetV1 0.75 @ 224, face: the 320x240 detector) allow,
    applied to the claim's model. The 1.0 models are sums of the conv layers' costs (320x240 does not compile)."""
    print("\nSipeed topic 691: 'MobileNet v1 1.0 @ QVGA is about 20~30fps' (no clock, runtime or crop stated):")
    qvga, win = mobilenet_convs(1.0, 240, 320), mobilenet_convs(1.0, 224, 224)
    for label, convs in (("320x240 as stated", qvga), ("224x224 window", win)):
        for how, ms in (("MaixPy runtime, KPU 400 MHz", convs_ms(convs)),
                        ("SDK 0.1 ms/layer, KPU 400 MHz", convs_ms(convs, 100)),
                        ("SDK 0.3 ms/layer, KPU 400 MHz", convs_ms(convs, 300)),
                        ("MaixPy runtime, KPU 500 MHz", convs_ms(convs, kpu_hz=500e6))):
            print("  %-18s %-30s %5.1f ms = %4.1f fps (conv layers, forward alone)" % (label, how, ms, 1e3 / ms))
    over = ["%d: %d" % (k, n) for k, n in enumerate(kpu_ram_needs(qvga)) if n > kpu.RAM_BYTES]
    print("  320x240: %d conv layers, %.2f MB of weights; layers needing more KPU RAM than its %d bytes (index: "
          "bytes): %s" % (len(qvga), sum(c[5] for c in qvga) / 1e6, kpu.RAM_BYTES, ", ".join(over) or "none"))
    (n_m, free_m), (n_f, free_f) = _split(mb075), _split(face)
    q_free = convs_ms(qvga, 0)
    for mb_ms in (37.0, 40.0):          # n*o + s*free = measured, for both models
        face_ms = 24.0
        s = (mb_ms - n_m * face_ms / n_f) / (free_m - n_m * free_f / n_f)
        o = (face_ms - s * free_f) / n_f
        q = len(qvga) * o + s * q_free
        print("  runtime and compute scale held to MobileNetV1 0.75 = %.0f ms and face = %.0f ms: %.2f ms per "
              "layer, compute x %.2f -> 1.0 @ 320x240 %.1f ms = %.1f fps" % (mb_ms, face_ms, o, s, q, 1e3 / q))
    # the other way round: the largest compute scale that still gives the claim at 320x240 with face = 24 ms, and what
    # MobileNetV1 0.75 @ 224 then takes (both grow with the scale)
    for fps in (20, 25):
        s = (1e3 / fps - len(qvga) * 24.0 / n_f) / (q_free - len(qvga) * free_f / n_f)
        o = (24.0 - s * free_f) / n_f
        print("  %d fps at 320x240 with face = 24 ms needs compute x %.2f at most (%.2f ms per layer): MobileNetV1 "
              "0.75 @ 224 would then take %.1f ms at most, against 37-40 ms measured"
              % (fps, s, o, n_m * o + s * free_m))


def load_flash_readings(built) -> None:
    """kpu.load_flash's dual buffer at each batch_size the API docs suggest (topic 1811 does not state its own), and
    neucrack's model x under the assumed architecture (cost.MODEL_X_READINGS)."""
    print("\nkpu.load_flash dual buffer by batch_size (ms; published: MobileNetV1 0.75 83 at 80.17 MHz, batch not "
          "stated; face 34 at 67.17 MHz):")
    for name, spi in (("mobilenet_0.75_224", cost.SPI_TOPIC_1811_HZ), ("face_yolov2_320x240", cost.SPI_NEUCRACK_HZ)):
        if name in built:
            print("  %-22s " % name + "  ".join("0x%X %.1f" % (b, predict(built[name], spi, b).load_flash_dual)
                                                 for b in (0x4000, 0x8000, 0xC000, 0x10000)))
    m = built.get(cost.MODEL_X)
    if m is None:
        return
    print("\nneucrack.com/p/313 'model x' read as %s (architecture not stated; not held by the tests):" % cost.MODEL_X)
    for version, figures in (("V3", cost.MODEL_X_READINGS), ("V4", cost.MODEL_X_V4_READINGS)):
        for f in figures:
            got = figure_ms(m, f)
            print("  %s %-18s batch 0x%-6X published %5.0f ms  predicted %5.1f ms  ratio %.2f" % (
                version, f.quantity, f.batch, f.middle, got, got / f.middle))


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        built = {cost.MODEL_X: cm.build(cost.MODEL_X, d)}
        for f in cost.PUBLISHED:
            if f.quantity == "loop_fps":
                if not YOLO20.is_file():
                    rows.append((f, None))
                    continue
                got = yolo_loop_fps(YOLO20, cm.YOLO20_ANCHORS, seconds=4)
            else:
                if f.model not in built:
                    built[f.model] = cm.build(f.model, d)
                got = figure_ms(built[f.model], f)
            rows.append((f, got))
    print("%-22s %-18s %-10s %-10s %-8s %s" % ("model", "quantity", "published", "predicted", "ratio", "source"))
    bad = 0
    for f, got in rows:
        pub = "%g" % f.low if f.low == f.high else "%g-%g" % (f.low, f.high)
        if got is None:
            print("%-22s %-18s %-10s %-10s %-8s %s" % (f.model, f.quantity, pub, "-", "skipped", f.source))
            continue
        ratio = "%.2f%s" % (got / f.middle, " in" if f.low <= got <= f.high and f.low != f.high else "")
        bad += not f.holds(got)
        print("%-22s %-18s %-10s %-10.1f %-8s %s" % (f.model, f.quantity, pub, got, ratio, f.source))
    print("(ms, or frames per second for loop_fps; ratio = predicted / published middle; aim 0.85-1.15 or inside)")
    print("\nthe KPU conv structure, Sipeed forum topic 691 (3x3 conv 128->128, 16-bit weights, KPU 300 MHz):")
    print("  ".join("%dx%d %.3f/%.3f ms=%.2f" % (w, h, cost.topic_691_ms(w, h), ms, cost.topic_691_ms(w, h) / ms)
                    for w, h, ms in cost.TOPIC_691))
    if {"mobilenet_0.75_224", "face_yolov2_320x240"} <= set(built):
        topic_691_readings(built["mobilenet_0.75_224"], built["face_yolov2_320x240"])
    load_flash_readings(built)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
