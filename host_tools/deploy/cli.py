"""`deploy`, `flash` and `sync` commands (python -m host_tools <command> --help)."""
from pathlib import Path

from host_tools import outdir
from host_tools.command import UsageError
from host_tools.deploy import deploy as deploy_mod
from host_tools.deploy import board_state, flash_update, flasher, kfpkg, layout, ports, sync, vendor_kfpkg
from host_tools.deploy.link import Link
from host_tools.files import write_atomic


# What deploy and flash write in --out; a rerun replaces these and keeps everything else.
OUT_FILES = ("flash-plan.json", "models.json", "*.kfpkg")


def _port(ap):
    ap.add_argument("--port", help=ports.HELP)
    ap.add_argument("--tool", default="mpremote", choices=("mpremote", "ampy"), help="REPL driver for files")


def _common(ap):
    ap.add_argument("--models", action="append", metavar="DIR",
                    help="folder of model manifests + kmodels, e.g. out/train/NAME (repeatable; default models); a "
                         "kind none of them holds comes from the demos in models/")
    ap.add_argument("--classifier", metavar="NAME", help="the classifier the app runs (default: the first by name)")
    ap.add_argument("--detector", metavar="NAME", help="the detector the app runs (default: the first by name)")
    ap.add_argument("--pin", action="append", default=[], metavar="NAME=OFFSET",
                    help="keep a model at a given flash offset (repeatable; default: none, placed in order)")
    ap.add_argument("--out", default="out/deploy", help="where the plan, models.json and .kfpkg go (only those "
                                                        "are replaced)")
    ap.add_argument("--force", action="store_true", help="write into --out even when it holds other files (they "
                                                        "are kept)")


def _flash_args(ap):
    ap.add_argument("--board", default="bit", choices=flasher.BOARDS, help="kflash board")
    ap.add_argument("--baud", type=int, default=1500000, help="kflash baud rate")
    ap.add_argument("--firmware", default=None, help="MaixPy .bin to flash at 0 (default: keep the board's)")


def _out(args) -> Path:
    return outdir.claim(args.out, OUT_FILES, force=args.force, command=args.command).path


def add_deploy(ap):
    _port(ap)
    _common(ap)
    _flash_args(ap)
    ap.add_argument("--device", default="device", help="device code folder")
    ap.add_argument("--target", default="/flash", choices=sync.FILESYSTEMS, help="file system for the app")
    ap.add_argument("--reset", action="store_true",
                    help="reset the board at the end even when nothing changed (default: only when something did)")
    ap.set_defaults(command="deploy")


def run_deploy(args):
    out = _out(args)
    manifests = _selected(args)
    deploy_mod.deploy(ports.resolve(args.port), board=args.board, firmware=args.firmware, manifests=manifests,
                      device_dir=args.device, target=args.target, tool=args.tool, baud=args.baud,
                      pins=layout.parse_pins(args.pin), out_dir=out, reset=args.reset)
    return 0


def _selected(args) -> list:
    return deploy_mod.select_models(args.models or ["models"], classifier=args.classifier, detector=args.detector)


def add_flash(ap):
    ap.description = ("flash layout plan (plan), .kfpkg of everything (kfpkg), or flash what changed (write, "
                      "needs the board)")
    ap.add_argument("action", choices=("plan", "kfpkg", "write"), help="what to do")
    _port(ap)
    _common(ap)
    _flash_args(ap)
    ap.add_argument("--firmware-size", type=int, default=None,
                    help="size of the board's firmware .bin, when planning without --firmware (default: 0, or "
                         "what the board says with write)")
    ap.add_argument("--kfpkg", metavar="FILE", help="plan or write this .kfpkg (a MaixPy release, a vendor's model "
                                                    "package) instead of the models: checked like our plan (4 KiB "
                                                    "aligned, no overlap, below SPIFFS; write: nothing over a model "
                                                    "the board's models.json lists, which then names the new place "
                                                    "of a model the package moves), repacked into --out (default: "
                                                    "the models)")
    ap.add_argument("--allow-spiffs", action="store_true", help="with --kfpkg: let it write over SPIFFS (the "
                                                               "board's /flash files)")
    ap.set_defaults(command="flash")


def run_flash(args):
    out = _out(args)
    if args.kfpkg:
        if args.action == "kfpkg":
            raise UsageError("flash kfpkg --kfpkg: give plan (check it) or write (flash it)")
        vendor_kfpkg.flash_package(args.kfpkg, ports.resolve(args.port) if args.action == "write" else None,
                                   board=args.board, baud=args.baud, allow_spiffs=args.allow_spiffs, out_dir=out,
                                   tool=args.tool)
        return 0
    manifests = _selected(args)
    fw_size = args.firmware_size
    port = ports.resolve(args.port) if args.action == "write" else None
    link = Link(port, args.tool) if port is not None else None
    listed = ()
    try:
        if link is not None:
            on_board = board_state.read(link)     # what the board lists is never overwritten (layout.plan)
            listed = on_board.listed
            if args.firmware is None and fw_size is None:
                fw_size = on_board.firmware_size
        plan = layout.plan(manifests, firmware=args.firmware, firmware_size=fw_size, pins=layout.parse_pins(args.pin),
                           board=listed)
        plan.save(out / "flash-plan.json")
        write_atomic(out / "models.json", plan.device_models_json())
        for r in plan.regions():
            print("%-12s 0x%06X-0x%06X %8d bytes %s" % (r.name, r.offset, r.end, r.size, r.file))
        print("plan: %s, device models.json: %s" % (out / "flash-plan.json", out / "models.json"))
        if args.action == "plan":
            return 0
        d = flash_update.diff(plan, link)
    finally:
        if link is not None:
            link.close()
    if not d.changed:
        print("flash: nothing changed (%d blocks compared), no sector written" % len(d.spans))
        return 0
    pkg = kfpkg.write(out / ("deploy.kfpkg" if args.action == "write" else "all.kfpkg"),
                      flash_update.package_entries(d))
    print("kfpkg: %s (%d bytes to flash)" % (pkg, d.bytes_to_write))
    if args.action == "write":
        flasher.flash(pkg, port, board=args.board, baud=args.baud,
                      progress=lambda n, done, total: None, log=print)
        print("flash: wrote %d bytes in %d blocks" % (d.bytes_to_write, len(d.changed)))
    return 0


def add_sync(ap):
    ap.description = "copy device/ (lib/ flattened on /flash) to the board, changed files only"
    _port(ap)
    ap.add_argument("--device", default="device", help="device code folder")
    ap.add_argument("--target", default="/flash", choices=sync.FILESYSTEMS, help="file system for the app")
    ap.add_argument("--models-json", default=None, help="also put this models.json (e.g. out/deploy/models.json; "
                                                        "default: none)")
    ap.add_argument("--reset", action="store_true", help="machine.reset() afterwards (boot.py and main.py run)")


def run_sync(args):
    files = sync.device_files(args.device, args.target)
    if args.models_json:
        files["models.json"] = Path(args.models_json)
    link = Link(ports.resolve(args.port), args.tool)
    try:
        rep = sync.sync(link, files, args.target)
        print(rep.summary() + " (%d round trips)" % rep.round_trips)
    finally:
        link.close(reset="hard" if args.reset else None)
    return 0
