"""The Maix Bit's 16 MiB SPI flash: where the firmware, the models and SPIFFS live, and how models are placed.

The firmware sits at 0, written by the ISP with a 37-byte header (flag, length, SHA-256) that the boot ROM
checks. SPIFFS (/flash) owns 0xD00000 to the end. Models go between, each at a 4 KiB (sector) aligned offset.
"""
import hashlib

FLASH_SIZE = 16 * 1024 * 1024
SECTOR = 4096                        # the erase unit: models start on a sector
SPIFFS_OFFSET = 0xD00000
SPIFFS_SIZE = FLASH_SIZE - SPIFFS_OFFSET
# Models start no lower than this even behind a small firmware: a later, bigger firmware update then does not
# overwrite them (the ERR_KMODEL_VERSION-after-update trap). The official demos use the same floor.
DEFAULT_MODEL_BASE = 0x300000
FIRMWARE_HEADER = 1 + 4 + 32         # flag, u32 length, SHA-256 around the firmware .bin


class PlanError(ValueError):
    """A layout that cannot be used; the message names the model (or the firmware) and the offsets."""


def align_up(n: int, a: int = SECTOR) -> int:
    return (n + a - 1) // a * a


def firmware_image(firmware: bytes) -> bytes:
    """The bytes written at 0 for a firmware .bin: flag (DIO), u32 length, payload, SHA-256 of those."""
    data = bytes([0x02]) + len(firmware).to_bytes(4, "little") + firmware
    return data + hashlib.sha256(data).digest()


def firmware_end(firmware_size) -> int:
    """First sector after a firmware .bin of this size (0 when unknown); PlanError past SPIFFS."""
    end = align_up(firmware_size + FIRMWARE_HEADER) if firmware_size is not None else 0
    if end > SPIFFS_OFFSET:
        raise PlanError("firmware: %d bytes end at 0x%X, past the start of SPIFFS at 0x%X"
                        % (firmware_size, end, SPIFFS_OFFSET))
    return end


def place(models, pins=None, fw_end=0, model_base=DEFAULT_MODEL_BASE, taken=()) -> dict:
    """{name: offset} for models given as (name, bytes) pairs: pinned ones where pins say, the others in order in
    the first gap from max(fw_end, model_base) up, each 4 KiB aligned, below SPIFFS. taken: (name, offset, size,
    why) spans that must stay as they are (models the board still lists): the others go around them. PlanError names
    the model for a repeated name, an overlap (with a taken span too), a misaligned pin or a lack of room."""
    pins = dict(pins or {})
    sizes = {}
    for name, size in models:
        if name in sizes:
            raise PlanError("%s: two models have this name" % name)
        sizes[name] = size
    unknown = set(pins) - set(sizes)
    if unknown:
        raise PlanError("%s: pinned offset given for a model that is not in the plan" % ", ".join(sorted(unknown)))
    base = max(fw_end, align_up(model_base))
    placed = {}                      # name -> (offset, size)

    def check_free(name, at, size):
        if at % SECTOR:
            raise PlanError("%s: offset 0x%X is not 4 KiB aligned" % (name, at))
        if at < fw_end:
            raise PlanError("%s: offset 0x%X overlaps the firmware, which ends at 0x%X" % (name, at, fw_end))
        if at + size > SPIFFS_OFFSET:
            raise PlanError("%s: %d bytes at 0x%X end at 0x%X, past the start of SPIFFS at 0x%X"
                            % (name, size, at, at + size, SPIFFS_OFFSET))
        for other, (o, s) in placed.items():
            if at < align_up(o + s) and o < align_up(at + size):
                raise PlanError("%s: 0x%X-0x%X overlaps %s at 0x%X-0x%X" % (name, at, at + size, other, o, o + s))
        for other, o, s, why in taken:
            if at < align_up(o + s) and o < align_up(at + size):
                raise PlanError("%s: 0x%X-0x%X would overwrite %s at 0x%X-0x%X%s" % (name, at, at + size, other, o,
                                                                                  o + s, why))

    for name, size in sizes.items():
        if name in pins:
            check_free(name, int(pins[name]), size)
            placed[name] = (int(pins[name]), size)
    for name, size in sizes.items():
        if name in pins:
            continue
        at = base
        for o, s in sorted(list(placed.values()) + [(o, s) for _, o, s, _ in taken]):
            if at + size <= o:
                break
            at = max(at, align_up(o + s))
        if at + size > SPIFFS_OFFSET:
            used = sum(align_up(s) for _, s in placed.values()) + sum(align_up(s) for _, _, s, _ in taken)
            raise PlanError("%s: %d bytes do not fit: models may use 0x%X-0x%X (%d bytes), %d already taken%s"
                            % (name, size, base, SPIFFS_OFFSET, SPIFFS_OFFSET - base, used,
                               "" if not taken else " (%s)" % "; ".join(n + why for n, _, _, why in taken)))
        check_free(name, at, size)
        placed[name] = (at, size)
    return {name: placed[name][0] for name in sizes}
