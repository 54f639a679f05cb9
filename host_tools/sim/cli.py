"""`python -m host_tools sim`: run the device app on the virtual Maix Bit (what `make sim` does)."""
import sys


def add_arguments(ap):
    ap.description = ("Run device/ on a virtual Maix Bit; write LCD PNGs, an animated GIF and a log. The output "
                      "folder keeps anything this command did not write.")
    ap.add_argument("--out", default="out/sim", help="output folder: frames/NNNN.png, sim.gif, sim.log and the "
                                                     "board's files (board/); only those are replaced")
    ap.add_argument("--force", action="store_true", help="write into --out even when it holds other files "
                                                        "(they are kept)")
    ap.add_argument("--device", default="device", help="the device app folder")
    ap.add_argument("--models", default="models", help="folder of model manifests (*.json + *.kmodel)")
    ap.add_argument("--manifest", action="append", help="use these manifests instead of --models (repeatable; default: --models' manifests)")
    ap.add_argument("--seconds", type=float, default=20.0, help="board time to run")
    ap.add_argument("--frames", type=int, default=0, help="stop after this many displayed frames (0: no limit)")
    ap.add_argument("--press", type=float, action="append",
                    help="BOOT press at this board millisecond (repeatable; default: one in the middle)")
    ap.add_argument("--profile", choices=("full", "minimum"), default="full", help="firmware build to simulate")
    ap.add_argument("--sd", action="store_true", help="give the board an SD card (app and models on /sd)")
    ap.add_argument("--sensor", choices=("ov2640", "gc0328"), default="ov2640",
                    help="camera sensor (default ov2640, what most Maix Bits carry)")
    ap.add_argument("--camera", action="append", help="image file or folder for the camera (repeatable; default: "
                                                      "scikit-image photos and printed digits)")
    ap.add_argument("--hold-ms", type=float, default=2500.0, help="how long each camera picture stays in view")
    ap.add_argument("--quiet", action="store_true", help="do not echo the board's console")


def run(args) -> int:
    from host_tools.sim.runner import run_app
    echo = None if args.quiet else sys.stdout.write
    res = run_app(out_dir=args.out, device_dir=args.device, models_dir=args.models, manifests=args.manifest,
                  frames=args.frames or None, seconds=args.seconds, presses=args.press, profile=args.profile,
                  sd=args.sd, camera=args.camera, hold_ms=args.hold_ms, echo=echo, sensor=args.sensor,
                  force=args.force)
    print("\nsim: %d frames in %.1f s of board time" % (res.frames, res.board_ms / 1000.0))
    print("sim: LCD frames  %s/ (%d PNGs)" % (res.out_dir / "frames", len(res.pngs)))
    print("sim: animation   %s" % res.gif)
    print("sim: log         %s" % res.log)
    return 0
