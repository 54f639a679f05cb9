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
from host_tools.k210.flash import (DEFAULT_MODEL_BASE, FLASH_SIZE, SPIFFS_OFFSET, PlanError, firmware_end,
                                   firmware_image, place)

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

    def regions(self) -> list:
        return ([self.firmware] if self.firmware else []) + list(self.models)

    def to_json(self) -> str:
        d = {"schema": PLAN_SCHEMA, "flash_size": FLASH_SIZE, "spiffs_offset": SPIFFS_OFFSET,
             "firmware_end": self.firmware_end,
             "firmware": asdict(self.firmware) if self.firmware else None,
             "models": [asdict(r) for r in self.models]}
        return json.dumps(d, indent=1) + "\n"

    def device_models_json(self) -> str:
        """The device's models.json: every planned model read from its flash offset."""
        entries = [mf.device_entry(self.manifests[r.name], flash_offset=r.offset) for r in self.models]
        return mf.device_manifest(entries)

    def save(self, path) -> Path:
        return write_atomic(path, self.to_json())


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def plan(manifest_paths, firmware=None, firmware_size=None, pins=None, model_base=DEFAULT_MODEL_BASE) -> FlashPlan:
    """Place each model at a 4 KiB-aligned offset between the firmware's end and SPIFFS.

    firmware: path of a MaixPy .bin to flash at 0 (its size decides where models may start), or None to keep the
    board's; firmware_size: size of the board's firmware .bin when known. pins: {model name: offset} for models
    that must stay at a given offset; the others fill the gaps in the order given. Raises PlanError naming the
    model for any overlap, misalignment or lack of room (ManifestError for a manifest whose files do not match
    it); nothing is written.
    """
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
    offsets = place([(r.name, r.size) for _, r in items], pins, fw_end, model_base)
    for _, r in items:
        r.offset = offsets[r.name]
    return FlashPlan(firmware=fw_region, firmware_end=fw_end, models=[r for _, r in items],
                     manifests={m.name: m for m, _ in items})


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
