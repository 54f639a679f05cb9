"""`make deploy`: plan the flash, flash what changed, sync device/ and models.json, reset.

The board works at every instant (A/B): the plan is checked (overlaps, sizes, stale kmodels) before the board
is touched; the board is asked what its models.json lists and its flash holds before anything is written, and
new or changed models go to flash no listed model uses (layout.plan), so the app runs its current models
through the flash write and the ISP reboot; the app files and the new models.json are staged as .part files
and renamed in one exec, models.json last. The old space is free for the next deploy. The device checks each
model's first bytes before loading it (device/lib/registry.py). A reset at the end starts the new app; when
nothing changed there is none.
"""
import json
import time
from dataclasses import dataclass, field
from pathlib import Path

from host_tools import manifest as mf
from host_tools.deploy import board_state, flash_update, flasher, kfpkg, layout, sdcard, sync
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
    reset: bool = False               # the board was reset at the end
    lines: list = field(default_factory=list)


def find_manifests(models_dir) -> list:
    """The model manifests in a folder (manifest.find: a broken one is refused, never dropped)."""
    return mf.find(models_dir)


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
           tool="mpremote", baud=1500000, pins=None, out_dir="out/deploy", log=print, manifests=None,
           reset=False) -> DeployReport:
    """manifests: the models to deploy, in models.json order (select_models); default every one in models_dir.
    reset: reset the board even when nothing changed (else a deploy that changes nothing leaves the app running
    as it was: started again where it stood, no reset)."""
    out_dir = Path(out_dir)
    if manifests is None:
        manifests = find_manifests(models_dir)
    # Refuse a layout or an app that cannot work before talking to the board at all.
    layout.plan(manifests, firmware=firmware, firmware_size=None if firmware else 0, pins=pins)
    files = sync.device_files(device_dir, target)
    if "models.json" in files:
        raise sync.SyncError("%s: device/ must not hold models.json, deploy writes it from the plan"
                             % files["models.json"])

    try:
        link = Link(port, tool)
    except LinkError as e:
        if firmware is None:
            raise LinkError("%s (a board without a working MaixPy needs FIRMWARE=maixpy.bin: it is flashed through "
                            "the ISP ROM, which answers even then)" % e) from None
        log("board: no MaixPy REPL (%s); flashing everything" % e)
        link = None
    on_board = board_state.read(link) if link is not None else board_state.OnBoard()
    for note in on_board.notes:
        log("board: %s" % note)
    if on_board.removed_parts:
        log("board: removed %s (left by an interrupted copy)" % ", ".join(on_board.removed_parts))
    fw_size = None
    if firmware is None:
        fw_size = on_board.firmware_size
        if fw_size is None:
            log("flash: the board's firmware size is unknown (no valid kflash header at 0); models start at 0x%X"
                % DEFAULT_MODEL_BASE)
    plan = layout.plan(manifests, firmware=firmware, firmware_size=fw_size, pins=pins, board=on_board.listed)
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
        if plan.overwrites and link is not None:
            # no room beside them: the board stops listing these before their space is rewritten
            withdraw(link, on_board, plan.overwrites, log)
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
    files["models.json"] = models_json.encode()
    files.update(mf.board_files(manifests))          # labels files the models.json names
    report.files = sync.sync(link, files, target, log=log)
    log(report.files.summary())
    sdcard.install(link, card, log)
    changed = bool(d.changed or report.files.copied or card.launcher)
    if changed or reset:
        link.close(reset="hard")
        log("reset: machine.reset(), the app starts from %s" % target)
    elif on_board.app_running:
        link.close(resume=True)
        log("no reset: nothing changed; the app runs on")
    else:
        link.close()
        log("no reset: nothing changed (the app was not running; --reset starts it)")
    report.reset = changed or reset
    return report


def withdraw(link, on_board, models, log=print):
    """Rewrite the board's models.json without `models` (verified, renamed over the old one), so that the app
    never loads them while their flash is rewritten."""
    drop = {(x.name, x.offset) for x in models}
    for listing, text in on_board.listings.items():
        doc = json.loads(text)
        keep = [m for m in doc["models"]
                if (m.get("name"), (m.get("source") or {}).get("flash")) not in drop]
        if len(keep) == len(doc["models"]):
            continue
        doc["models"] = keep
        sync.put_file(link, listing, (json.dumps(doc, indent=1) + "\n").encode())
        log("board: %s no longer lists %s (its flash is rewritten in place: no room beside it)"
            % (listing, ", ".join(sorted(x.name for x in models))))
