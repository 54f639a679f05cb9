"""The big-endian form kpu.load_flash reads from flash: what MaixPy's model_le2be.py does, every 4-byte word
byte-swapped (that script pads a length that is not a multiple of 4; compiled files are a multiple of 8 long).
V3 and V4 kmodels alike (MaixPy loads V4 with load_flash since 2020, through the same flash reader: see
docs/kmodel-v4.md)."""
import struct

import numpy as np

V3_HEADER_BYTES = 28
LDMK = 0x4B4D444C                  # 'LDMK': the first word of kmodel V4 (nncase v0.2) and V5 files
V4_HEADER_WORDS = 10               # identifier, version, flags, target, constants, main_mem, nodes, inputs, outputs, -
V4_MAX_COUNT = 1 << 16


def to_big_endian(data: bytes) -> bytes:
    if len(data) % 4:
        raise ValueError("kmodel length %d is not a multiple of 4 bytes" % len(data))
    return np.frombuffer(data, "<u4").astype(">u4").tobytes()


def from_big_endian(data: bytes) -> bytes:
    """The inverse (the same word swap); a trailing partial word is dropped."""
    n = len(data) - len(data) % 4
    return np.frombuffer(data[:n], ">u4").astype("<u4").tobytes()


def stored_size(flash, addr: int):
    """Bytes of the big-endian V3 kmodel stored at `addr` in a flash image, or None when none is there."""
    if addr < 0 or addr + V3_HEADER_BYTES > len(flash):
        return None
    version, _, _, n_layers, _, _, n_out = struct.unpack_from(">7I", bytes(flash[addr:addr + V3_HEADER_BYTES]))
    head = V3_HEADER_BYTES + 8 * n_out + 8 * n_layers
    if version != 3 or n_layers == 0 or n_layers > 4096 or n_out > 64 or addr + head > len(flash):
        return None
    sizes = struct.unpack_from(">%dI" % (2 * n_layers), bytes(flash[addr + head - 8 * n_layers:addr + head]))
    total = head + sum(sizes[1::2])
    return total if addr + total <= len(flash) else None


def v4_extent(buf, offset: int, endian: str = "<"):
    """Bytes a kmodel V4 at `offset` of buf spans (header, input and output tables, constants, node headers and
    bodies: what nncase v0.2's model_size counts), or None when none is there or it runs past buf's end."""
    try:
        h = struct.unpack_from(endian + "%dI" % V4_HEADER_WORDS, buf, offset)
        if h[0] != LDMK or h[1] != 4 or max(h[6], h[7], h[8]) > V4_MAX_COUNT:
            return None
        heads = 4 * V4_HEADER_WORDS + 32 * h[7] + 16 * h[8] + h[4]
        sizes = struct.unpack_from(endian + "%dI" % (2 * h[6]), buf, offset + heads)
    except struct.error:
        return None
    total = heads + 8 * h[6] + sum(sizes[1::2])
    return total if offset + total <= len(buf) else None


def from_flash_image(flash, addr: int):
    """The little-endian kmodel bytes of the big-endian V3 or V4 model at `addr`, or None when none is there."""
    n = stored_size(flash, addr) or (v4_extent(flash, addr, ">") if addr >= 0 else None)
    if n is None:
        return None
    return from_big_endian(bytes(flash[addr:addr + n]))
