"""The K210 ISP ROM and kflash's flash stub, as seen from the serial line, writing into a flash image.

A pure protocol object: `feed(bytes)` returns the bytes the chip would answer. Frames are SLIP (C0 ... C0,
DB-escaped); a request is u16 op, u16 reason, u32 CRC32 of the rest, u32 address, u32 length, data. Greeting,
flash greeting, status and reboot come as fixed 13-byte frames and are accepted as such. Replies are
[op, reason] and never contain C0 or DB (kflash's reader mishandles escapes).
"""
import struct
import zlib
from dataclasses import dataclass, field

SECTOR = 4096
OK, BAD_LEN, BAD_CRC, BAD_CMD, BAD_INIT, BAD_ERASE, BAD_WRITE = 0xE0, 0xE1, 0xE2, 0xE3, 0xE4, 0xE5, 0xE6
STUB_ADDRESS = 0x80000000
ON_BOARD_FLASH = 1   # kflash -f 1: the Maix Bit's SPI0 flash


@dataclass
class IspStats:
    stub_bytes: int = 0          # bytes uploaded into SRAM (the flash stub)
    write_frames: int = 0
    bytes_written: int = 0
    sectors: set = field(default_factory=set)   # 4 KiB sectors programmed (erased + written) this session
    rebooted: bool = False


def decode_request(frame: bytes):
    """(op, crc_ok, address, length, data) of one unescaped frame."""
    op = frame[0] | (frame[1] << 8) if len(frame) >= 2 else frame[0]
    if len(frame) < 16:          # fixed greeting-style frames: everything after the op is zero
        return op, True, 0, 0, b""
    crc, address, length = struct.unpack_from("<III", frame, 4)
    data = bytes(frame[16:])
    ok = zlib.crc32(frame[8:]) & 0xFFFFFFFF == crc
    return op, ok, address, length, data


class Isp:
    def __init__(self, flash: bytearray):
        self.flash = flash
        self.stage = "rom"       # "rom" until the stub is booted, then "stub"
        self.stats = IspStats()
        self._frame = None       # bytearray while inside a frame
        self._escape = False

    @property
    def in_frame(self) -> bool:
        return bool(self._frame)

    def feed(self, data: bytes) -> bytes:
        out = bytearray()
        for b in data:
            if b == 0xC0:
                if self._frame:          # end of a frame (an empty one is a start marker)
                    reply = self.handle(bytes(self._frame))
                    if reply:
                        out += b"\xc0" + reply + b"\xc0"
                self._frame = bytearray()
                self._escape = False
            elif self._frame is None:
                continue                 # line noise between frames
            elif self._escape:
                self._frame.append({0xDC: 0xC0, 0xDD: 0xDB}.get(b, b))
                self._escape = False
            elif b == 0xDB:
                self._escape = True
            else:
                self._frame.append(b)
        return bytes(out)

    def handle(self, frame: bytes) -> bytes:
        op, crc_ok, address, length, data = decode_request(frame)
        if op == 0xC2:                   # greeting: a reset into ISP lands here from any stage
            self.stage = "rom"
            return bytes([0xC2, OK])
        if self.stage == "rom":
            return self._rom(op, crc_ok, address, length, data)
        return self._stub(op, crc_ok, address, length, data)

    def _rom(self, op, crc_ok, address, length, data):
        if op == 0xC3:                   # memory write (the stub upload)
            if not crc_ok:
                return bytes([op, BAD_CRC])
            if length != len(data):
                return bytes([op, BAD_LEN])
            self.stats.stub_bytes += len(data)
            return bytes([op, OK])
        if op == 0xC5:                   # boot: no answer; from now on the stub talks
            if address == STUB_ADDRESS and self.stats.stub_bytes:
                self.stage = "stub"
            return b""
        if op == 0xC6:                   # baud change: nothing to do on a pty, and no answer
            return b""
        return bytes([op & 0xFF, BAD_CMD])

    def _stub(self, op, crc_ok, address, length, data):
        if op == 0xD2:                   # flash greeting
            return bytes([op, OK])
        if op == 0xD6:                   # baud set: no answer
            return b""
        if not crc_ok:
            return bytes([op & 0xFF, BAD_CRC])
        if op == 0xD7:                   # flash init: address field carries the -f value
            return bytes([op, OK if address == ON_BOARD_FLASH else BAD_INIT])
        if op in (0xD3, 0xD8):           # erase (0, 0 = whole chip)
            start, n = (0, len(self.flash)) if (address, length) == (0, 0) else (address, length)
            if start % SECTOR or n % SECTOR or start + n > len(self.flash):
                return bytes([op, BAD_ERASE])
            self.flash[start:start + n] = b"\xff" * n
            self.stats.sectors.update(range(start // SECTOR, (start + n) // SECTOR))
            return bytes([op, OK])
        if op == 0xD9:                   # status: erases finish at once here
            return bytes([op, OK])
        if op == 0xD4:                   # flash write: the stub erases and rewrites each sector it touches
            if length != len(data):
                return bytes([op, BAD_LEN])
            if address + length > len(self.flash):
                return bytes([op, BAD_WRITE])
            self.flash[address:address + length] = data
            self.stats.write_frames += 1
            self.stats.bytes_written += length
            if length:
                self.stats.sectors.update(range(address // SECTOR, (address + length - 1) // SECTOR + 1))
            return bytes([op, OK])
        if op == 0xD5:                   # reboot
            self.stats.rebooted = True
            return bytes([op, OK])
        return bytes([op & 0xFF, BAD_CMD])
