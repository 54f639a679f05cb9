"""The big-endian form kpu.load_flash reads from flash: what MaixPy's model_le2be.py does, every 4-byte word
byte-swapped (that script pads a length that is not a multiple of 4; our files are a multiple of 8 long)."""
import struct

import numpy as np


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
    if addr < 0 or addr + 28 > len(flash):
        return None
    version, _, _, n_layers, _, _, n_out = struct.unpack_from(">7I", bytes(flash[addr:addr + 28]))
    head = 28 + 8 * n_out + 8 * n_layers
    if version != 3 or n_layers == 0 or n_layers > 4096 or n_out > 64 or addr + head > len(flash):
        return None
    sizes = struct.unpack_from(">%dI" % (2 * n_layers), bytes(flash[addr + 28 + 8 * n_out:addr + head]))
    total = head + sum(sizes[1::2])
    return total if addr + total <= len(flash) else None
