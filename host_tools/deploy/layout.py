"""Flash layout planner: where the firmware and each kmodel live in the Maix Bit's 16 MiB SPI flash.

The firmware sits at 0 (kflash adds a 37-byte header: flag, length, SHA-256); SPIFFS (/flash) owns 0xD00000 to
the end. Models go between, each at a 4 KiB (sector) aligned offset, raw for kpu.load(offset) or as the
big-endian copy for kpu.load_flash. A plan that does not fit is refused before anything is written.
"""
import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from host_tools import manifest as mf
from host_tools.files import write_atomic

FLASH_SIZE = 16 * 1024 * 1024
SECTOR = 4096
SPIFFS_OFFSET = 0xD00000
# Models start no lower than this even behind a small firmware: a later, bigger firmware update then does not
# overwrite them (the ERR_KMODEL_VERSION-after-update trap). The official demos use the same floor.
DEFAULT_MODEL_BASE = 0x300000
FIRMWARE_HEADER = 1 + 4 + 32   # what kflash's sha256Prefix adds around the firmware
PLAN_SCHEMA = 1


class PlanError(ValueError):
    """A layout that cannot be used; the message names the model (or the firmware) and the offsets."""


def align_up(n: int, a: int = SECTOR) -> int:
    return (n + a - 1) // a * a


def firmware_image(firmware: bytes) -> bytes:
    """The bytes kflash writes at 0 for a firmware .bin: flag (DIO), u32 length, payload, SHA-256 of those."""
    data = bytes([0x02]) + len(firmware).to_bytes(4, "little") + firmware
    return data + hashlib.sha256(data).digest()


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


def model_region_source(manifest_path, m: mf.Manifest) -> tuple:
    """(file, load) of the bytes to put in flash for one manifest, checked against the manifest."""
    manifest_path = Path(manifest_path)
    le = mf.kmodel_path(manifest_path, m)
    if not le.is_file():
        raise PlanError("%s: kmodel file %s is missing" % (m.name, le))
    if mf.sha256_file(le) != m.sha256:
        raise PlanError("%s: %s does not match the sha256 in %s (recompile the model)" % (m.name, le, manifest_path))
    if m.load == "flash":
        if not m.big_endian:
            raise PlanError("%s: load is 'flash' but the manifest names no big-endian copy (field big_endian)"
                            % m.name)
        be = manifest_path.parent / m.big_endian
        if not be.is_file():
            raise PlanError("%s: big-endian copy %s is missing" % (m.name, be))
        return be, "flash"
    return le, "ram"


def plan(manifest_paths, firmware=None, firmware_size=None, pins=None, model_base=DEFAULT_MODEL_BASE) -> FlashPlan:
    """Place each model at a 4 KiB-aligned offset between the firmware's end and SPIFFS.

    firmware: path of a MaixPy .bin to flash at 0 (its size decides where models may start), or None to keep the
    board's; firmware_size: size of the board's firmware .bin when known. pins: {model name: offset} for models
    that must stay at a given offset; the others fill the gaps in the order given. Raises PlanError naming the
    model for any overlap, misalignment or lack of room; nothing is written.
    """
    pins = dict(pins or {})
    fw_region = None
    if firmware is not None:
        raw = Path(firmware).read_bytes()
        img = firmware_image(raw)
        fw_region = Region("firmware", 0, len(img), str(firmware), _sha(img), prefix=True, load="")
        firmware_size = len(raw)
    fw_end = align_up(firmware_size + FIRMWARE_HEADER) if firmware_size is not None else 0
    if fw_end > SPIFFS_OFFSET:
        raise PlanError("firmware: %d bytes end at 0x%X, past the start of SPIFFS at 0x%X"
                        % (firmware_size, fw_end, SPIFFS_OFFSET))
    base = max(fw_end, align_up(model_base))

    items = []
    names = set()
    for p in manifest_paths:
        m = mf.load(p)
        if m.name in names:
            raise PlanError("%s: two manifests name this model (second: %s)" % (m.name, p))
        names.add(m.name)
        src, load = model_region_source(p, m)
        data = Path(src).read_bytes()
        items.append((m, Region(m.name, -1, len(data), str(src), _sha(data), load=load)))
    unknown = set(pins) - names
    if unknown:
        raise PlanError("%s: pinned offset given for a model that is not in the plan" % ", ".join(sorted(unknown)))

    placed = []   # Regions with offsets, kept sorted

    def check_free(r):
        if r.offset % SECTOR:
            raise PlanError("%s: offset 0x%X is not 4 KiB aligned" % (r.name, r.offset))
        if r.offset < fw_end:
            raise PlanError("%s: offset 0x%X overlaps the firmware, which ends at 0x%X" % (r.name, r.offset, fw_end))
        if r.end > SPIFFS_OFFSET:
            raise PlanError("%s: %d bytes at 0x%X end at 0x%X, past the start of SPIFFS at 0x%X"
                            % (r.name, r.size, r.offset, r.end, SPIFFS_OFFSET))
        for o in placed:
            if r.offset < align_up(o.end) and o.offset < align_up(r.end):
                raise PlanError("%s: 0x%X-0x%X overlaps %s at 0x%X-0x%X"
                                % (r.name, r.offset, r.end, o.name, o.offset, o.end))

    for m, r in items:
        if m.name in pins:
            r.offset = int(pins[m.name])
            check_free(r)
            placed.append(r)
    for m, r in items:
        if m.name in pins:
            continue
        at = base
        for o in sorted(placed, key=lambda x: x.offset):
            if at + r.size <= o.offset:
                break
            at = max(at, align_up(o.end))
        r.offset = at
        if r.end > SPIFFS_OFFSET:
            used = sum(align_up(o.size) for o in placed)
            raise PlanError("%s: %d bytes do not fit: models may use 0x%X-0x%X (%d bytes), %d already taken"
                            % (m.name, r.size, base, SPIFFS_OFFSET, SPIFFS_OFFSET - base, used))
        check_free(r)
        placed.append(r)
    order = {m.name: i for i, (m, _) in enumerate(items)}
    models = sorted(placed, key=lambda r: order[r.name])
    return FlashPlan(firmware=fw_region, firmware_end=fw_end, models=models,
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
