"""`make deploy`: plan the flash, flash what changed, sync device/ and models.json, reset.

Order matters for safety: the plan is checked (overlaps, sizes, stale kmodels) before the board is touched;
the board is asked what its flash and files hold before anything is written; a running main.py is stopped
first; the soft reset at the end starts the new app.
"""
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from host_tools import manifest as mf
from host_tools.deploy import flash_update, flasher, kfpkg, layout, sdcard, sync
from host_tools.deploy.link import Link, LinkError
from host_tools.files import write_atomic
from host_tools.k210.flash import DEFAULT_MODEL_BASE


@dataclass
class DeployReport:
    plan: layout.FlashPlan
    flashed_bytes: int = 0
    flashed_spans: int = 0
    compared_spans: int = 0
    flash_note: str = ""
    files: sync.SyncReport = None
    lines: list = field(default_factory=list)


def find_manifests(models_dir) -> list:
    """The model manifests in a folder: every *.json naming a kmodel (reports and other JSON are not)."""
    out = []
    for p in sorted(Path(models_dir).glob("*.json")):
        try:
            d = json.loads(p.read_text())
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(d, dict) and "kmodel" in d and "kmodel_version" in d:
            out.append(p)
    return out


DEMO_MODELS = Path(__file__).resolve().parents[2] / "models"   # the shipped demos (`make models`)
DEVICE_APP = Path(__file__).resolve().parents[2] / "device"     # the app, wherever the command runs from
KINDS = ("classifier", "detector")


def select_models(dirs, classifier=None, detector=None, demo_dir=None, log=print) -> list:
    """The manifests to deploy from the folders in `dirs`, ordered so that the app (which runs the first model of
    each kind in models.json) runs the chosen classifier and detector; a kind none of the folders holds comes from
    the shipped demos, so BOOT always has two modes to switch between. Says which model each mode will run.
    """
    from host_tools import manifest as mf
    demo_dir = DEMO_MODELS if demo_dir is None else demo_dir
    paths = []
    for d in dirs:
        if not Path(d).is_dir():
            raise layout.PlanError("--models %s: no such folder" % d)
        found = find_manifests(d)
        if not found:
            raise layout.PlanError("--models %s: no model manifests (<name>.json beside <name>.kmodel; `train` "
                                   "and `compile` write them)" % d)
        paths += found
    by_kind = {k: [] for k in KINDS}
    for p in paths:
        by_kind[mf.load(p).kind].append(p)
    chosen = {"classifier": classifier, "detector": detector}
    for kind in KINDS:
        if not by_kind[kind] and Path(demo_dir).is_dir() and Path(demo_dir).resolve() not in \
                [Path(d).resolve() for d in dirs]:
            demo = [p for p in find_manifests(demo_dir) if mf.load(p).kind == kind]
            if demo:
                by_kind[kind] = demo[:1]
                paths.append(demo[0])
                log("deploy: %s: %s, the demo from %s (none in %s)" % (kind, demo[0].stem, demo_dir,
                                                                     ", ".join(map(str, dirs))))
    ordered = []
    for kind in KINDS:
        names = [p.stem for p in by_kind[kind]]
        want = chosen[kind]
        if want is not None and want not in names:
            raise layout.PlanError("--%s %s: not among the %ss in %s (%s)" % (
                kind, want, kind, ", ".join(map(str, dirs)), ", ".join(names) or "none"))
        if not names:
            log("deploy: no %s: that mode shows a message on the board" % kind)
            continue
        pick = by_kind[kind][names.index(want)] if want is not None else by_kind[kind][0]
        others = [n for n in names if n != pick.stem]
        log("deploy: the app runs %s %s%s" % (kind, pick.stem, "" if not others else
            " (also in flash: %s; choose with --%s NAME)" % (", ".join(others), kind)))
        ordered.append(pick)
    return ordered + [p for p in paths if p not in ordered]


def wait_for_repl(port, tool, timeout=30.0) -> Link:
    end = time.monotonic() + timeout
    while True:
        try:
            return Link(port, tool, attempts=3)
        except Exception:
            if time.monotonic() > end:
                raise
            time.sleep(0.5)


def deploy(port, board="bit", firmware=None, models_dir="models", device_dir="device", target="/flash",
           tool="mpremote", baud=1500000, pins=None, out_dir="out/deploy", log=print, manifests=None) -> DeployReport:
    """manifests: the models to deploy, in models.json order (select_models); default every one in models_dir."""
    out_dir = Path(out_dir)
    if manifests is None:
        manifests = find_manifests(models_dir)
    # Refuse a layout that cannot work before talking to the board at all.
    layout.plan(manifests, firmware=firmware, firmware_size=None if firmware else 0, pins=pins)

    try:
        link = Link(port, tool)
    except LinkError as e:
        if firmware is None:
            raise LinkError("%s (a board without a working MaixPy needs FIRMWARE=maixpy.bin: it is flashed through "
                            "the ISP ROM, which answers even then)" % e) from None
        log("board: no MaixPy REPL (%s); flashing everything" % e)
        link = None
    fw_size = None
    if firmware is None:
        fw_size = flash_update.board_firmware_size(link)
        if fw_size is None:
            log("flash: the board's firmware size is unknown (no valid kflash header at 0); models start at 0x%X"
                % DEFAULT_MODEL_BASE)
    plan = layout.plan(manifests, firmware=firmware, firmware_size=fw_size, pins=pins)
    plan.save(out_dir / "flash-plan.json")
    models_json = plan.device_models_json()
    write_atomic(out_dir / "models.json", models_json)
    for r in plan.regions():
        log("flash: %-12s 0x%06X-0x%06X %8d bytes %s" % (r.name, r.offset, r.end, r.size,
                                                        "(big-endian, load_flash)" if r.load == "flash" else ""))
    report = DeployReport(plan)

    card = sdcard.check(link, target) if link is not None else None   # may refuse: nothing is written yet
    if card is not None and card.note:
        log(card.note)

    d = flash_update.diff(plan, link)
    report.compared_spans = len(d.spans)
    if d.changed:
        entries = flash_update.package_entries(d)
        pkg = kfpkg.write(out_dir / "deploy.kfpkg", entries)
        report.flashed_bytes = d.bytes_to_write
        report.flashed_spans = len(d.changed)
        report.flash_note = d.reason
        log("flash: writing %d bytes in %d blocks%s" % (d.bytes_to_write, len(d.changed),
                                                        " (%s)" % d.reason if d.reason else ""))
        if link is not None:
            link.close()
        last = {}

        def progress(name, done, total):
            if name == "ISP":           # kflash uploading its flash stub into SRAM: not ours to report
                return
            pct = 100 * done // max(total, 1)
            if last.get(name, -10) + 25 <= pct or done == total:
                last[name] = pct
                log("  %s %d%%" % (name, pct))

        flasher.flash(pkg, port, board=board, baud=baud, progress=progress)
        link = wait_for_repl(port, tool)
    else:
        log("flash: nothing changed (%d blocks compared), no sector written" % len(d.spans))

    if card is None:                  # MaixPy answers only now that its firmware is flashed
        card = sdcard.check(link, target)
        if card.note:
            log(card.note)
    files = sync.device_files(device_dir, target)
    if "models.json" in files:
        raise sync.SyncError("%s: device/ must not hold models.json, deploy writes it from the plan"
                             % files["models.json"])
    files["models.json"] = models_json.encode()
    files.update(mf.board_files(manifests))          # labels files the models.json names
    report.files = sync.sync(link, files, target, log=log)
    log(report.files.summary())
    sdcard.install(link, card, log)
    link.close(reset="hard")
    log("reset: machine.reset(), the app starts from %s" % target)
    return report
