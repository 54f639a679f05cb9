"""Flash layout planner: which bytes of which model go where in the Maix Bit's flash (the map and the placement
rule are host_tools.k210.flash), as a plan the deployer writes and kflash follows.

A plan that does not fit is refused before anything is written.
"""
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from host_tools import manifest as mf
from host_tools.files import write_atomic
from host_tools.k210.flash import (DEFAULT_MODEL_BASE, FLASH_SIZE, SPIFFS_OFFSET, PlanError, align_up,
                                   firmware_end, firmware_image, place)

PLAN_SCHEMA = 1


@dataclass
class Region:
    name: str           # model name, or "firmware"
    offset: int
    size: int           # bytes as they land in flash
    file: str           # host file the bytes come from
    sha256: str         # of the bytes as they land in flash
    prefix: bool = False  # kflash sha256Prefix (firmware only)
    load: str = "ram"   # model: "ram" (raw kmodel) | "flash" (big-endian copy); firmware: ""

    @property
    def end(self) -> int:
        return self.offset + self.size

    def data(self) -> bytes:
        raw = Path(self.file).read_bytes()
        return firmware_image(raw) if self.prefix else raw


@dataclass
class FlashPlan:
    firmware: Region = None        # None: keep what the board has
    firmware_end: int = 0          # first byte after the firmware (given or assumed)
    models: list = field(default_factory=list)     # [Region]
    manifests: dict = field(default_factory=dict)  # name -> Manifest (not serialised)
    kept: list = field(default_factory=list)       # names the board lists with these bytes: they stay put
    overwrites: list = field(default_factory=list)  # [board_state.Listed] replaced in place (no room beside them)

    def regions(self) -> list:
        return ([self.firmware] if self.firmware else []) + list(self.models)

    def to_json(self) -> str:
        d = {"schema": PLAN_SCHEMA, "flash_size": FLASH_SIZE, "spiffs_offset": SPIFFS_OFFSET,
             "firmware_end": self.firmware_end,
             "firmware": asdict(self.firmware) if self.firmware else None,
             "models": [asdict(r) for r in self.models],
             "kept": list(self.kept), "overwrites": [x.name for x in self.overwrites]}
        return json.dumps(d, indent=1) + "\n"

    def device_models_json(self) -> str:
        """The device's models.json: every planned model read from its flash offset."""
        entries = [mf.device_entry(self.manifests[r.name], flash_offset=r.offset, stored=r.data())
                   for r in self.models]
        return mf.device_manifest(entries)

    def save(self, path) -> Path:
        return write_atomic(path, self.to_json())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan(manifest_paths, firmware=None, firmware_size=None, pins=None, model_base=DEFAULT_MODEL_BASE,
         board=()) -> FlashPlan:
    """Place each model at a 4 KiB-aligned offset between the firmware's end and SPIFFS.

    firmware: path of a MaixPy .bin to flash at 0 (its size decides where models may start), or None to keep the
    board's; firmware_size: size of the board's firmware .bin when known. pins: {model name: offset} for models
    that must stay at a given offset; the others fill the gaps in the order given. board: the models the board
    lists now (board_state.Listed). The plan never writes over them while they are listed: a model listed with the
    same bytes stays where it is; new and changed models go to space no listed model uses (A/B), so the board
    runs its current models until the new models.json replaces the old one; a listed model the plan does not
    carry is never overwritten; one the plan replaces by name is overwritten in place only when there is no room
    beside it (plan.overwrites: deploy first removes it from the board's models.json). Raises PlanError naming
    the model for any overlap, misalignment or lack of room (ManifestError for a manifest whose files do not match
    it); nothing is written.
    """
    pins = dict(pins or {})
    fw_region = None
    if firmware is not None:
        raw = Path(firmware).read_bytes()
        img = firmware_image(raw)
        fw_region = Region("firmware", 0, len(img), str(firmware), _sha(img), prefix=True, load="")
        firmware_size = len(raw)
    fw_end = firmware_end(firmware_size)
    items = []
    for p in manifest_paths:
        m = mf.load(p)
        src = mf.flash_file(p, m)
        data = src.read_bytes()
        items.append((m, Region(m.name, -1, len(data), str(src), _sha(data), load=m.load)))
    names = {r.name for _, r in items}
    listed = {}
    for x in board:
        listed.setdefault(x.name, x)
    kept = [r.name for _, r in items if r.name not in pins and r.name in listed
            and (listed[r.name].sha256, listed[r.name].size) == (r.sha256, r.size) and listed[r.name].offset >= fw_end]
    pins.update({n: listed[n].offset for n in kept})

    protected = [x for x in board if x.name not in names]            # never overwritten while listed
    replaced = [x for x in board if x.name in names and x.name not in kept]
    for x in protected:
        if fw_region is not None and x.offset < fw_end:
            raise PlanError("firmware: %d bytes end at 0x%X, over %s at 0x%X%s" % (firmware_size, fw_end, x.name,
                                                                                 x.offset, listed_span(x)[3]))
    sizes = [(r.name, r.size) for _, r in items]
    try:      # A/B: around every listed model, the old versions of the replaced ones included
        offsets = place(sizes, pins, fw_end, model_base, taken=[listed_span(x) for x in protected + replaced])
    except PlanError:
        offsets = place(sizes, pins, fw_end, model_base, taken=[listed_span(x) for x in protected])
    for _, r in items:
        r.offset = offsets[r.name]
    written = [(r.offset, r.end) for _, r in items if r.name not in kept] + ([(0, fw_end)] if fw_region else [])
    overwrites = [x for x in replaced if any(a < align_up(x.end) and x.offset < align_up(b) for a, b in written)]
    return FlashPlan(firmware=fw_region, firmware_end=fw_end, models=[r for _, r in items],
                     manifests={m.name: m for m, _ in items}, kept=kept, overwrites=overwrites)


def listed_span(x) -> tuple:
    """A model the board lists (board_state.Listed) as a span k210.flash.place must leave as it is."""
    return (x.name, x.offset, x.size, ", which the board still lists in %s" % x.listing)


def parse_offset(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise PlanError("offset %r is not a number (use 0x300000 or 3145728)" % text) from None


def parse_pins(specs) -> dict:
    """['name=0x500000', ...] -> {name: offset}."""
    pins = {}
    for s in specs or ():
        name, sep, off = s.partition("=")
        if not sep or not name:
            raise PlanError("pin %r must look like NAME=OFFSET" % s)
        pins[name] = parse_offset(off)
    return pins
