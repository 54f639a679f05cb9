"""Run the device app on a virtual Maix Bit for N frames or T seconds of board time and keep what the LCD showed.

Writes to the output folder: frames/NNNN.png (every LCD update that was a displayed frame, sampled down to at
most `max_pngs`), sim.gif (animated, timed by the board's clock), sim.log (the REPL console plus a summary).
"""
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from host_tools import outdir
from host_tools.files import write_atomic
from host_tools.sim.board import Board
from host_tools.sim.camera import default_sources, digit_glyph, load_sources
from host_tools.sim.provision import check_app, demo_manifests, fixture_manifests, install_app, install_models
from host_tools.sim.session import Session

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT.parent / "shared" / "fixtures" / "kmodel"
# What a run writes in its output folder; a rerun replaces these and keeps everything else.
WRITES = ("frames/[0-9][0-9][0-9][0-9].png", "sim.gif", "sim.log", "board/**", "fixture-models/**")


@dataclass
class RunResult:
    out_dir: Path
    frames: int                  # lcd.display() calls
    board_ms: float              # board time at the end
    gif: Path = None
    log: Path = None
    pngs: list = field(default_factory=list)
    models: list = field(default_factory=list)   # manifest paths used
    stopped: str = None
    board: Board = None


def _pick_models(models_dir, work_dir, say) -> list:
    """models/'s manifests; a kind models/ lacks (before `make models` has run) comes from the fixtures."""
    from host_tools import manifest as mf
    paths = demo_manifests(models_dir) if models_dir is not None and Path(models_dir).is_dir() else []
    kinds = {mf.load(p).kind for p in paths}
    missing = {"classifier", "detector"} - kinds
    if missing:
        fx = [f for f in fixture_manifests(FIXTURES, Path(work_dir) / "fixture-models") if mf.load(f).kind in missing]
        if fx:
            say("models: %s has no demo %s yet; using the fixture kmodel(s) from %s"
                % (models_dir, " or ".join(sorted(missing)), FIXTURES))
        paths = sorted(paths + fx, key=lambda p: mf.load(p).kind != "classifier")
    if not paths:
        raise FileNotFoundError("no models: %s has no manifests and the fixtures at %s are absent"
                                % (models_dir, FIXTURES))
    say("models: %s" % ", ".join(str(p) for p in paths))
    return paths


def run_app(out_dir="out/sim", device_dir="device", models_dir="models", manifests=None, frames=None, seconds=20.0,
            presses=None, profile="full", sd=False, camera=None, hold_ms=2500.0, max_pngs=400, gif_max=300,
            echo=None, sensor="ov2640", force=False) -> RunResult:
    """Boot device_dir's app on a fresh virtual board with the given models and record the LCD.

    frames / seconds: stop after that many displayed frames or that much board time (whichever first).
    presses: BOOT presses as board milliseconds (default: one press in the middle of the run: one mode switch).
    camera: image files/folders/arrays (default: scikit-image photos and rendered digits).
    sensor: the camera sensor model, "ov2640" (the Maix Bit default) or "gc0328".
    force: write into an output folder that holds files a run does not write (they are kept).
    """
    out = outdir.claim(out_dir, WRITES, force=force, command="sim")
    check_app(device_dir)
    camera_sources = load_sources(camera) if camera is not None else None
    if manifests is None and models_dir is not None and Path(models_dir).is_dir():
        demo_manifests(models_dir)      # a broken manifest is refused before anything is written
    out_dir = out.prepare()
    (out_dir / "frames").mkdir(exist_ok=True)
    notes = []

    def say(text):
        notes.append(text)
        if echo is not None:
            echo(text + "\n")

    paths = list(manifests) if manifests is not None else _pick_models(models_dir, out_dir, say)
    glyph = 64
    from host_tools import manifest as mf
    for p in paths:
        m = mf.load(p)
        if m.kind == "classifier":
            glyph = digit_glyph(m.input["w"], m.input["h"], m.framing)
    sources = camera_sources if camera_sources is not None else default_sources(glyph)
    board = Board(flash_root=out_dir / "board" / "flash", sd_root=(out_dir / "board" / "sd") if sd else None,
                  profile=profile, camera=sources, hold_ms=hold_ms, keep_frames=100000, console_echo=echo,
                  sensor=sensor)
    install_app(board, device_dir)
    install_models(board, paths)
    limit_ms = seconds * 1000.0 if seconds else None
    if presses is None:
        presses = [limit_ms / 2] if limit_ms else [3000.0]
    for t in presses:
        board.press(at_ms=t)

    session = Session(board)

    def stop_check():
        if frames and board.screen.shown >= frames:
            return "%d frames" % frames
        if limit_ms and board.clock.ms >= limit_ms:
            return "%.1f s of board time" % (limit_ms / 1000)
        return None
    session.rt.stop_check = stop_check
    result = session.boot()

    shots = [f for f in board.screen.frames if f[2] == "display"] or list(board.screen.frames)
    res = RunResult(out_dir, board.screen.shown, board.clock.ms, models=paths, stopped=result.stopped, board=board)
    step = max(1, -(-len(shots) // max_pngs))
    for i, (t, rgb, _) in enumerate(shots[::step]):
        p = out_dir / "frames" / ("%04d.png" % i)
        Image.fromarray(rgb).save(p)
        res.pngs.append(p)
    if shots:
        gstep = max(1, -(-len(shots) // gif_max))
        picked = shots[::gstep]
        ims = [Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE) for _, rgb, _ in picked]
        times = [t for t, _, _ in picked]
        durs = [max(20, int(round(b - a))) for a, b in zip(times, times[1:])] + [500]
        res.gif = out_dir / "sim.gif"
        ims[0].save(res.gif, save_all=True, append_images=ims[1:], duration=durs, loop=0, optimize=False)
    fps = res.frames / (res.board_ms / 1000.0) if res.board_ms else 0.0
    summary = notes + [
        "board: profile %s, %s sensor, %s" % (profile, sensor.upper(),
                                               "SD card" if sd else "no SD card (models in the flash image)"),
        "BOOT presses at ms: %s" % ", ".join("%.0f" % t for t in presses),
        "stopped after: %s" % (result.stopped or "main.py returned"),
        "frames displayed: %d in %.1f s of board time (%.1f fps average, including boot)"
        % (res.frames, res.board_ms / 1000.0, fps),
        "uncaught error: %r" % (result.error,) if result.error is not None else "uncaught error: none",
    ]
    res.log = write_atomic(out_dir / "sim.log", board.console_text().replace("\r\n", "\n")
                           + "\n---- simulation ----\n" + "\n".join(summary) + "\n")
    return res
