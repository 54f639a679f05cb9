"""The K210 cost model against each published Maix Bit figure (host_tools.k210.cost.PUBLISHED): model, source,
published, predicted, ratio to the published middle (or 'inside' the published range).

    .venv/bin/python bench/board_time.py
"""
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from host_tools.k210 import cost  # noqa: E402
from host_tools.kmodel import load  # noqa: E402
from host_tools.kmodel.board_time import predict  # noqa: E402
from host_tools.pipeline import calibration_models as cm  # noqa: E402
from host_tools.sim.demo_loop import yolo_loop_fps  # noqa: E402

YOLO20 = ROOT.parent / "shared" / "fixtures" / "kmodel" / "nncase-yolo20" / "yolo.kmodel"


def main() -> int:
    rows = []
    with tempfile.TemporaryDirectory() as d:
        built = {}
        for f in cost.PUBLISHED:
            if f.quantity == "loop_fps":
                if not YOLO20.is_file():
                    rows.append((f, None))
                    continue
                got = yolo_loop_fps(YOLO20, cm.YOLO20_ANCHORS, seconds=4)
            else:
                if f.model not in built:
                    built[f.model] = cm.build(f.model, d)
                got = getattr(predict(built[f.model]), f.quantity)
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
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
