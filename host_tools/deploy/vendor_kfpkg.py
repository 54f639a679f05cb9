"""Someone else's .kfpkg (a MaixPy release, a vendor's model package): read, checked like our own plan, repacked.

Each file must lie inside the 16 MiB flash on a 4 KiB sector (the stub erases whole sectors, so an unaligned
start would wipe the bytes before it), files must not overlap (a sha256Prefix file, the firmware, takes its
37-byte header too), and nothing may reach SPIFFS at 0xD00000 (the board's /flash: app files, models.json)
unless --allow-spiffs. The entries are then rebuilt with our own flash-list.json writer (kfpkg.py), whose shape kflash's
address regex always accepts, and go through the same flasher as `deploy`. What each kmodel inside is, the
reader says (a big-endian V3 is for kpu.load_flash).

Writing reads the board first, as `deploy` does (board_state): a file that would overwrite a model the board's
models.json lists is refused, naming both (the rule and words of layout.plan), unless it is that model's own bytes
where they already are. A file named <name>.kmodel (or <name>_be.kmodel) for a model the board lists as <name> is
its new version: flashed beside the old copy, then models.json points at it (A/B, as deploy).
"""
import hashlib
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from host_tools import manifest as mf
from host_tools.deploy import board_state, layout, sync
from host_tools.deploy.kfpkg import Entry
from host_tools.deploy.link import Link, LinkError
from host_tools.k210.flash import (FIRMWARE_HEADER, FLASH_SIZE, SECTOR, SPIFFS_OFFSET, PlanError, align_up,
                                   firmware_end, place)


@dataclass(frozen=True)
class Item:
    entry: Entry
    size: int             # bytes written to flash (the firmware's header included)
    what: str             # what the file is, for the listing

    @property
    def end(self) -> int:
        return self.entry.address + self.size


def read(path) -> list:
    """The package's entries as kfpkg.Entry, in flash-list.json order; PlanError naming the file or field."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise PlanError("%s: cannot read (%s)" % (path, e.strerror)) from None
    try:
        z = zipfile.ZipFile(io.BytesIO(raw))
    except zipfile.BadZipFile:
        raise PlanError("%s: not a .kfpkg (kflash's zip with flash-list.json): not a zip file" % path) from None
    with z:
        try:
            listing = json.loads(z.read("flash-list.json"))
        except KeyError:
            raise PlanError("%s: a zip without flash-list.json, not a .kfpkg" % path) from None
        except ValueError as e:
            raise PlanError("%s: flash-list.json is not valid JSON (%s)" % (path, e)) from None
        files = listing.get("files") if isinstance(listing, dict) else None
        if not isinstance(files, list) or not files:
            raise PlanError("%s: flash-list.json field 'files' must be a non-empty list" % path)
        out = []
        for i, f in enumerate(files):
            where = "%s: flash-list.json files[%d]" % (path, i)
            if not isinstance(f, dict) or not isinstance(f.get("bin"), str):
                raise PlanError("%s: needs a 'bin' file name" % where)
            addr = f.get("address")
            try:
                addr = int(addr, 0) if isinstance(addr, str) else addr
            except ValueError:
                addr = None
            if not isinstance(addr, int) or isinstance(addr, bool) or addr < 0:
                raise PlanError("%s (%s): field 'address' is %r, not a flash offset" % (where, f["bin"],
                                                                                        f.get("address")))
            try:
                data = z.read(f["bin"])
            except KeyError:
                raise PlanError("%s: names %s, which the zip does not hold" % (where, f["bin"])) from None
            out.append(Entry(addr, f["bin"], data, bool(f.get("sha256Prefix", False))))
    return out


def check(entries, allow_spiffs=False) -> list:
    """[Item] in flash order; PlanError naming the file for a misaligned, overlapping or out-of-range one."""
    from host_tools.kmodel.identify import identify
    items = []
    for e in entries:
        size = len(e.data) + (FIRMWARE_HEADER if e.sha256_prefix else 0)
        if e.sha256_prefix:
            what = "firmware (with kflash's header)"
        elif e.data[:4] == b"\x03\x00\x00\x00":
            what = "kmodel V3 (kpu.load(0x%X))" % e.address
        else:
            what = identify(e.data).name
        items.append(Item(e, size, what))
    items.sort(key=lambda it: it.entry.address)
    prev = None
    for it in items:
        name, at = it.entry.name, it.entry.address
        if at % SECTOR:
            raise PlanError("%s: address 0x%X is not 4 KiB aligned (flashing it would erase the sector's bytes "
                            "before it)" % (name, at))
        if it.end > FLASH_SIZE:
            raise PlanError("%s: %d bytes at 0x%X end at 0x%X, past the 16 MiB flash" % (name, it.size, at, it.end))
        if it.end > SPIFFS_OFFSET and not allow_spiffs:
            raise PlanError("%s: 0x%X-0x%X reaches SPIFFS at 0x%X (the board's /flash files would be lost); give "
                            "--allow-spiffs to write it anyway" % (name, at, it.end, SPIFFS_OFFSET))
        if prev is not None and at < align_up(prev.end):
            raise PlanError("%s: 0x%X-0x%X overlaps %s at 0x%X-0x%X" % (name, at, it.end, prev.entry.name,
                                                                       prev.entry.address, prev.end))
        prev = it
    return items


def is_listed_copy(it: Item, x) -> bool:
    """The item is exactly the model the board lists as x (board_state.Listed), where it already is."""
    return (not it.entry.sha256_prefix and it.entry.address == x.offset and it.size == x.size
            and x.sha256 == hashlib.sha256(it.entry.data).hexdigest())


def around_listed(items, on_board) -> None:
    """PlanError naming both when an item would overwrite a model the board lists (layout.plan's rule, through
    k210.flash.place), unless it is that model's own bytes where they already are; or the board's firmware, when
    the package brings none."""
    listed = on_board.listed
    same = {x for x in listed for it in items if is_listed_copy(it, x)}
    below = [it for it in items if it.entry.address < SPIFFS_OFFSET]    # no model is listed in SPIFFS
    place([(it.entry.name, min(it.end, SPIFFS_OFFSET) - it.entry.address) for it in below],
          {it.entry.name: it.entry.address for it in below}, model_base=0,
          fw_end=0 if brings_firmware(items) else firmware_end(on_board.firmware_size),
          taken=[layout.listed_span(x) for x in listed if x not in same])


def relisted(items, on_board) -> dict:
    """{models.json on the board: (its new text, [names moved])} for the listed models the package holds a new
    version of (a file <name>.kmodel or <name>_be.kmodel for the entry <name>, elsewhere: around_listed refused it
    over the old copy). Each such entry's source then names the new place, size, sha256 and first bytes; the rest
    of the entry is kept. PlanError when the file is not what the entry loads."""
    out = {}
    for x in on_board.listed:
        for it in items:
            if brings_firmware([it]) or Path(it.entry.name).stem not in (x.name, x.name + "_be") or \
                    is_listed_copy(it, x):
                continue
            doc, moved = out.get(x.listing) or (json.loads(on_board.listings[x.listing]), [])
            for m in doc["models"]:
                if isinstance(m, dict) and m.get("name") == x.name and m["source"].get("flash") == x.offset:
                    load, version = m.get("load", "ram"), m.get("kmodel_version", 3)
                    want = "big-endian kmodel V3" if load == "flash" else "kmodel V%s" % version
                    if not it.what.startswith(want):
                        raise PlanError("%s: %s lists %s as a %s (load %r), but this file is %s"
                                        % (it.entry.name, x.listing, x.name, want, load, it.what))
                    m["source"] = mf.flash_source(it.entry.address, it.entry.data)
            out[x.listing] = (doc, moved + [x.name])
    return {listing: (json.dumps(doc, indent=1) + "\n", moved) for listing, (doc, moved) in out.items()}


def brings_firmware(items) -> bool:
    return any(it.entry.sha256_prefix for it in items)


def connect(port, tool, items, log):
    """The board's REPL, to read what it lists first; None for a board without MaixPy when the package brings the
    firmware (the ISP ROM answers even then, and such a board runs no app to protect)."""
    try:
        return Link(port, tool)
    except LinkError as e:
        if not brings_firmware(items):
            raise LinkError("%s (flash write --kfpkg first reads which models the board's models.json lists, so as "
                            "not to overwrite one; a board without a working MaixPy needs a package holding the "
                            "firmware)" % e) from None
        log("board: no MaixPy REPL (%s); it lists no models, the package brings the firmware" % e)
        return None


def flash_package(path, port=None, board="bit", baud=1500000, allow_spiffs=False, out_dir=None, tool="mpremote",
                  log=print) -> list:
    """List and check the package; with a port, check it against what the board lists, write it (repacked into
    out_dir) through the flasher, then point the board's models.json at the models it moved."""
    from host_tools.deploy import flasher, kfpkg
    from host_tools.deploy.deploy import wait_for_repl
    items = check(read(path), allow_spiffs)
    for it in items:
        log("%-20s 0x%06X-0x%06X %8d bytes %s" % (it.entry.name, it.entry.address, it.end, it.size, it.what))
    if port is None:
        return items
    link = connect(port, tool, items, log)
    try:
        on_board = board_state.read(link) if link is not None else board_state.OnBoard()
        for note in on_board.notes:
            log("board: %s" % note)
        around_listed(items, on_board)
        listings = relisted(items, on_board)
    finally:
        if link is not None:
            link.close()
    pkg = kfpkg.write(Path(out_dir) / ("%s.kfpkg" % Path(path).stem), [it.entry for it in items])
    last = {}

    def progress(name, done, total):
        pct = 100 * done // max(total, 1)
        if name != "ISP" and (last.get(name, -10) + 25 <= pct or done == total):
            last[name] = pct
            log("  %s %d%%" % (name, pct))

    flasher.flash(pkg, port, board=board, baud=baud, progress=progress)
    log("flash: wrote %s (%d files, %d bytes)" % (path, len(items), sum(it.size for it in items)))
    if listings:
        link = wait_for_repl(port, tool)
        try:
            for listing, (text, moved) in listings.items():
                sync.put_file(link, listing, text.encode())     # verified, then renamed over the old one
                log("board: %s lists %s at the new place" % (listing, ", ".join(moved)))
        finally:
            link.close(reset="hard")
        log("reset: machine.reset(), the app loads the models from their new place")
    return items
