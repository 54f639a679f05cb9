"""`deploy`, `flash` and `sync` commands (python -m host_tools <command> --help)."""
import argparse
import os
import sys
from pathlib import Path

from host_tools.deploy import deploy as deploy_mod
from host_tools.deploy import board_state, flash_update, flasher, kfpkg, layout, sync
from host_tools.deploy.link import DeviceError, Link, LinkError
from host_tools.files import write_atomic
from host_tools.k210.flash import PlanError
from host_tools.manifest import ManifestError


def _common(ap, port=True):
    if port:
        ap.add_argument("--port", default=os.environ.get("PORT"), help="serial port (default $PORT)")
        ap.add_argument("--tool", default="mpremote", choices=("mpremote", "ampy"), help="REPL driver for files")
    ap.add_argument("--models", action="append", metavar="DIR",
                    help="folder of model manifests + kmodels, e.g. out/train/NAME (repeatable; default models); a "
                         "kind none of them holds comes from the demos in models/")
    ap.add_argument("--classifier", metavar="NAME", help="the classifier the app runs (default: the first by name)")
    ap.add_argument("--detector", metavar="NAME", help="the detector the app runs (default: the first by name)")
    ap.add_argument("--pin", action="append", default=[], metavar="NAME=OFFSET",
                    help="keep a model at a given flash offset (repeatable)")
    ap.add_argument("--out", default="out/deploy", help="where the plan, models.json and .kfpkg go")


def _flash_args(ap):
    ap.add_argument("--board", default="bit", choices=flasher.BOARDS, help="kflash board (default bit)")
    ap.add_argument("--baud", type=int, default=1500000, help="kflash baud rate (default 1500000)")
    ap.add_argument("--firmware", default=None, help="MaixPy .bin to flash at 0 (default: keep the board's)")


def cmd_deploy(argv):
    ap = argparse.ArgumentParser(prog="python -m host_tools deploy",
                                 description="plan flash, flash what changed, sync device/, reset")
    _common(ap)
    _flash_args(ap)
    ap.add_argument("--device", default="device", help="device code folder (default device)")
    ap.add_argument("--target", default="/flash", choices=sync.FILESYSTEMS, help="file system for the app")
    ap.add_argument("--reset", action="store_true",
                    help="reset the board at the end even when nothing changed (default: only when something did)")
    args = ap.parse_args(argv)
    if not args.port:
        ap.error("give --port (or PORT=...), e.g. /dev/ttyUSB0 or the port `make board` printed")
    deploy_mod.deploy(args.port, board=args.board, firmware=args.firmware, manifests=_selected(args),
                      device_dir=args.device, target=args.target, tool=args.tool, baud=args.baud,
                      pins=layout.parse_pins(args.pin), out_dir=args.out, reset=args.reset)
    return 0


def _selected(args) -> list:
    return deploy_mod.select_models(args.models or ["models"], classifier=args.classifier, detector=args.detector)


def cmd_flash(argv):
    ap = argparse.ArgumentParser(prog="python -m host_tools flash",
                                 description="flash layout plan (plan), .kfpkg of everything (kfpkg), "
                                             "or flash what changed (write)")
    ap.add_argument("action", choices=("plan", "kfpkg", "write"))
    _common(ap)
    _flash_args(ap)
    ap.add_argument("--firmware-size", type=int, default=None,
                    help="size of the board's firmware .bin, when planning without --firmware")
    args = ap.parse_args(argv)
    out = Path(args.out)
    manifests = _selected(args)
    link = None
    fw_size = args.firmware_size
    listed = ()
    if args.action == "write":
        if not args.port:
            ap.error("flash write needs --port")
        link = Link(args.port, args.tool)
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
    if link is not None:
        link.close()
    if not d.changed:
        print("flash: nothing changed (%d blocks compared), no sector written" % len(d.spans))
        return 0
    pkg = kfpkg.write(out / ("deploy.kfpkg" if args.action == "write" else "all.kfpkg"),
                      flash_update.package_entries(d))
    print("kfpkg: %s (%d bytes to flash)" % (pkg, d.bytes_to_write))
    if args.action == "write":
        flasher.flash(pkg, args.port, board=args.board, baud=args.baud,
                      progress=lambda n, done, total: None, log=print)
        print("flash: wrote %d bytes in %d blocks" % (d.bytes_to_write, len(d.changed)))
    return 0


def cmd_sync(argv):
    ap = argparse.ArgumentParser(prog="python -m host_tools sync",
                                 description="copy device/ (lib/ flattened on /flash) to the board, changed files only")
    ap.add_argument("--port", default=os.environ.get("PORT"))
    ap.add_argument("--tool", default="mpremote", choices=("mpremote", "ampy"))
    ap.add_argument("--device", default="device")
    ap.add_argument("--target", default="/flash", choices=sync.FILESYSTEMS)
    ap.add_argument("--models-json", default=None, help="also put this models.json (e.g. out/deploy/models.json)")
    ap.add_argument("--reset", action="store_true", help="machine.reset() afterwards (boot.py and main.py run)")
    args = ap.parse_args(argv)
    if not args.port:
        ap.error("give --port")
    files = sync.device_files(args.device, args.target)
    if args.models_json:
        files["models.json"] = Path(args.models_json)
    link = Link(args.port, args.tool)
    try:
        rep = sync.sync(link, files, args.target)
        print(rep.summary() + " (%d round trips)" % rep.round_trips)
    finally:
        link.close(reset="hard" if args.reset else None)
    return 0


def main(argv) -> int:
    commands = {"deploy": cmd_deploy, "flash": cmd_flash, "sync": cmd_sync}
    try:
        return commands[argv[0]](argv[1:])
    except (PlanError, ManifestError, sync.SyncError, LinkError, DeviceError, flasher.FlashError) as e:
        print("%s: %s" % (argv[0], e), file=sys.stderr)
        return 1
