"""`python -m host_tools studio [--port P | --virtual] [--camera DIR|FILE]`: the board in a browser page.

Prints the page's URL with a random token in it (as Jupyter does) and serves until Ctrl-C. With no --port the
board is a virtual Maix Bit (on a pty, as `board` runs it) with device/ and the demo models installed.
"""
import asyncio
import signal
from pathlib import Path

from host_tools import outdir
from host_tools.command import Failed, UsageError
from host_tools.deploy import ports

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"       # never another interface: the page can change the board's files
STATE_FILES = ("flash.bin", "flash/**", "sd/**", "isp.jsonl", "board.log")


def add_arguments(ap):
    ap.description = __doc__.split("\n\n")[0]
    g = ap.add_mutually_exclusive_group()
    g.add_argument("--port", help="a real board's serial port (or `make board`'s pty): files, editor, run, REPL "
                                  "and models panes over the link; " + ports.HELP)
    g.add_argument("--virtual", action="store_true", help="a virtual Maix Bit in this process (the default)")
    ap.add_argument("--camera", help="virtual board: a folder of images or an image the camera sees "
                                     "(default: the simulator's digits and photos)")
    ap.add_argument("--http-port", type=int, default=8765, help="the page's TCP port on 127.0.0.1 (0: any free)")
    ap.add_argument("--state", default="out/studio/board",
                    help="virtual board: folder for its flash image and /flash files (filled afresh at start)")
    ap.add_argument("--models", default=str(ROOT / "models"), help="virtual board: the models installed")
    ap.add_argument("--device", default=str(ROOT / "device"), help="virtual board: the app installed")
    ap.add_argument("--sd", action="store_true", help="virtual board: with an SD card")
    ap.add_argument("--force", action="store_true", help="use --state even when it holds other files (kept)")


def provision(state_dir, device_dir, models_dir, sd):
    """A fresh virtual board's /flash (or /sd) and flash image: device/ and the demo models, as `make sim` has it.
    Returns {name: manifest dict} of the models (memory, predicted time) for the models pane."""
    from host_tools.deploy.virtual_board import BoardState
    from host_tools.sim.board import Board
    from host_tools.sim.provision import check_app, demo_manifests, install_app, install_models
    from host_tools import manifest as mf
    check_app(device_dir)
    paths = demo_manifests(models_dir) if Path(models_dir).is_dir() else []
    if not paths:
        raise FileNotFoundError("--models %s: no model manifests (<name>.json beside <name>.kmodel) there"
                                % models_dir)
    state = BoardState(state_dir, sd=sd)
    board = Board(flash_root=state.flash_root, sd_root=state.sd_root if sd else None)
    board.flash = state.flash
    install_app(board, device_dir)
    install_models(board, paths)
    state.save_flash()
    return {mf.load(p).name: model_facts(p) for p in paths}


def model_facts(path) -> dict:
    from dataclasses import asdict
    from host_tools import manifest as mf
    m = mf.load(path)
    facts = {k: v for k, v in asdict(m).items() if k in ("memory", "fits", "load", "kmodel", "size")}
    from host_tools.kmodel.board_time import predict
    from host_tools.kmodel.reader import parse
    kpath = mf.kmodel_path(path, m)
    facts["predicted_ms"] = predict(parse(kpath.read_bytes(), kpath.name)).as_dict()
    return facts


def run(args) -> int:
    if args.camera and args.port:
        raise UsageError("--camera is for the virtual board; a real board's camera is its own sensor")
    if args.camera and not Path(args.camera).exists():
        raise FileNotFoundError("--camera %s: no such file or folder" % args.camera)
    from host_tools.studio import assets
    if assets.missing():
        raise Failed(assets.missing())
    from aiohttp import web
    from host_tools.studio.boards import SerialBackend, VirtualBackend
    from host_tools.studio.files import BoardFiles
    from host_tools.studio.server import Studio
    from host_tools.studio.terminal import Terminal
    facts = {}
    if args.port:
        backend = SerialBackend(ports.resolve(args.port))
        BoardFiles(backend.port).stop()     # a port that is not a MaixPy board is reported now (within 5 s)
    else:
        outdir.claim(args.state, STATE_FILES, force=args.force, option="--state", command="studio")
        facts = provision(args.state, args.device, args.models, args.sd)
        backend = VirtualBackend(args.state, camera=args.camera, sd=args.sd)
        backend.wait_until_running()        # the URL is announced once the app runs (or has stopped)
    files = BoardFiles(backend.port, fs=backend.fs)
    studio = Studio(backend, files, host_manifests=facts, terminal=Terminal(backend.port, files.lock))
    return serve(studio, args.http_port)


def serve(studio, http_port, announce=print) -> int:
    """Serve until Ctrl-C or SIGTERM; the URL (with its token) is announced once the socket listens."""
    from aiohttp import web

    async def main():
        runner = web.AppRunner(studio.app(), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, HOST, http_port)
        await site.start()
        port = runner.addresses[0][1]
        announce("studio: the %s board on %s" % ("virtual" if studio.backend.virtual else "real", studio.backend.port),
                 flush=True)
        announce("open http://%s:%d/?token=%s   (stop with Ctrl-C)" % (HOST, port, studio.token), flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        try:
            await stop.wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
    finally:
        studio.backend.close()
    return 0
