"""Whole-loop frames per second of the device app on the virtual Maix Bit (camera, model input, KPU, drawing,
LCD: board time, host_tools/sim/clock.py's estimated costs), with a single-buffered camera (the reference) and a
double-buffered one, for each shipped demo model; the ratio is dual / single.

    .venv/bin/python bench/sim_fps.py [--models models] [--seconds 4]
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from host_tools import manifest as mf  # noqa: E402
from host_tools.sim import Board, Session  # noqa: E402
from host_tools.sim.camera import default_sources, digit_glyph  # noqa: E402
from host_tools.sim.provision import demo_manifests, install_app, install_models  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def loop_fps(manifest_path, dual, seconds, tmp):
    """Frames per board second of App.frame() with the one model loaded, after a one-second warm-up."""
    m = mf.load(manifest_path)
    glyph = digit_glyph(m.input["w"], m.input["h"], m.framing) if m.kind == "classifier" else 64
    board = Board(flash_root=tmp, camera=default_sources(glyph), hold_ms=2500)
    install_app(board, ROOT / "device")
    install_models(board, [manifest_path])
    s = Session(board)
    s.exec("import lcd, camera\nlcd.init()\ncamera.start(%s)\nimport app\na = app.App()\na.start()" % dual)
    app = s.main_globals["a"]
    assert app.manager.entry is not None and s.module("sensor") is not None
    t0 = board.clock.ms + 1000
    while board.clock.ms < t0:
        s.exec("a.frame()")
    n0 = app.frames
    while board.clock.ms < t0 + seconds * 1000:
        s.exec("a.frame()")
    return (app.frames - n0) / ((board.clock.ms - t0) / 1000.0)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", default=str(ROOT / "models"))
    ap.add_argument("--seconds", type=float, default=4.0, help="board seconds measured per run")
    args = ap.parse_args(argv)
    paths = demo_manifests(args.models)
    if not paths:
        print("sim_fps: no model manifests in %s (make models)" % args.models, file=sys.stderr)
        return 2
    import tempfile
    print("%-10s %-10s %8s %8s %6s" % ("model", "kind", "single", "dual", "ratio"))
    for p in paths:
        m = mf.load(p)
        with tempfile.TemporaryDirectory() as d:
            single = loop_fps(p, False, args.seconds, Path(d) / "a")
            dual = loop_fps(p, True, args.seconds, Path(d) / "b")
        print("%-10s %-10s %8.1f %8.1f %6.2f" % (m.name, m.kind, single, dual, dual / single))
    print("(frames per second of board time, whole loop; ratio = dual / single)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
