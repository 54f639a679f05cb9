"""What a file is when it is not a kmodel V3: the reader's message and the firmware's error code for it.

kpu.load reads the first u32 as the version (Maix_kpu.c, sipeed_kpu): anything but 3 (or 4 on builds with V4)
is ERR_KMODEL_VERSION; an encrypted model made for another board is ERR_DECRYPT; V5 is ERR_UNKNOWN.
"""
import io
import json
import struct
import zipfile
from dataclasses import dataclass

from host_tools.k210.bigendian import LDMK
from host_tools.k210.errors import ERR_DECRYPT, ERR_KMODEL_FORMAT, ERR_KMODEL_VERSION, ERR_UNKNOWN

BIG_ENDIAN_V3 = b"\x00\x00\x00\x03"
ZIP = b"PK\x03\x04"
# MaixHub's encrypted models start with these four bytes (the observation of such files; the firmware's
# decryption is in a closed library, lib_sipeed_kpu.a, so this is the only mark we know)
ENCRYPTED = b"DUDE"
TFLITE = b"TFL3"                   # FlatBuffers file identifier at byte 4


@dataclass(frozen=True)
class Identity:
    name: str                      # what the file is, in a few words
    text: str                      # what the file is and what to do, one sentence
    code: int                      # the firmware's error code kpu.load would give
    version: int = None            # the kmodel version, when it is a kmodel


def identify(data: bytes) -> Identity:
    """Name a file that is not a little-endian kmodel V3."""
    head = bytes(data[:8])
    if len(head) >= 8 and struct.unpack_from("<I", head, 0)[0] == LDMK:
        v = struct.unpack_from("<I", head, 4)[0]
        if v == 4:
            return Identity("kmodel V4", "kmodel V4 (nncase v0.2): MaixPy's full builds load it, the minimum "
                                         "build does not", ERR_KMODEL_VERSION, 4)
        return Identity("kmodel V%d" % v, "kmodel V%d (nncase v1.x): no MaixPy build loads it; compile to V3" % v,
                        ERR_UNKNOWN, v)
    if head[:4] == BIG_ENDIAN_V3:
        return Identity("big-endian kmodel V3 (kpu.load_flash)",
                        "a big-endian kmodel V3, the byte order kpu.load_flash reads from flash (MaixPy's "
                        "model_le2be.py); kpu.load and this tool read the little-endian file (`model add` takes "
                        "this one and swaps it back)", ERR_KMODEL_VERSION, 3)
    if head[:4] == ZIP:
        return Identity(".kfpkg or zip", _kfpkg(data), ERR_KMODEL_VERSION)
    if head[:4] == ENCRYPTED:
        return Identity("encrypted model", "an encrypted model ('DUDE', a MaixHub smodel): only the board it was "
                                           "made for decrypts it, and this tool cannot read or run it", ERR_DECRYPT)
    if head[4:8] == TFLITE:
        return Identity("tflite", "a TensorFlow Lite model, not a kmodel: compile it with `python -m host_tools "
                                  "compile FILE.tflite`", ERR_KMODEL_VERSION)
    if len(data) < 4:
        return Identity("data", "file is %d bytes, shorter than the 28-byte V3 header" % len(data),
                        ERR_KMODEL_FORMAT)
    v = struct.unpack_from("<I", head, 0)[0]
    return Identity("data", "not a kmodel: it starts with %s (a kmodel V3 starts with the version 3, V4/V5 with "
                            "'LDMK', a .kfpkg with 'PK', an encrypted model with 'DUDE'); version field %d"
                            % (head[:4].hex(" "), v), ERR_KMODEL_VERSION)


def _kfpkg(data: bytes) -> str:
    """A .kfpkg (kflash's zip with flash-list.json) or another zip."""
    cmd = "`python -m host_tools flash write --kfpkg FILE`"
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            listing = json.loads(z.read("flash-list.json"))
            files = ["%s at 0x%X" % (f["bin"], int(str(f["address"]), 0)) for f in listing["files"]]
    except (zipfile.BadZipFile, KeyError, ValueError, TypeError):
        return "a zip file, not a kmodel (a .kfpkg needs flash-list.json; write a .kfpkg with %s)" % cmd
    return ("a .kfpkg flash package (kflash's zip: %s), not a kmodel; write it to the board with %s, or unzip "
            "the kmodel and give that" % (", ".join(files) or "no files", cmd))
