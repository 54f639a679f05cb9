""".kfpkg builder: the only way to make kflash write a file at an address other than 0.

A .kfpkg is a zip holding flash-list.json and the files it names. kflash 1.1.6 does not parse that JSON as JSON
first: it rewrites `"address": X,` with a greedy regex, so each address must be a plain decimal on its own line,
followed by a comma, and must not be the last key of its object. `flash_list_json` writes exactly that shape.
"""
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from host_tools.files import write_atomic


@dataclass
class Entry:
    address: int
    name: str             # file name inside the package
    data: bytes
    sha256_prefix: bool   # True only for the firmware: kflash adds flag + length + SHA-256 around it


def flash_list_json(entries) -> str:
    lines = ['{', ' "version": "0.1.0",', ' "files": [']
    for i, e in enumerate(entries):
        if not isinstance(e.address, int) or e.address < 0:
            raise ValueError("%s: address %r must be a non-negative int" % (e.name, e.address))
        lines += ['  {',
                  '   "address": %d,' % e.address,    # own line, comma after: kflash's regex needs both
                  '   "bin": %s,' % json.dumps(e.name),
                  '   "sha256Prefix": %s' % ("true" if e.sha256_prefix else "false"),
                  '  }' + ("," if i + 1 < len(entries) else "")]
    lines += [' ]', '}']
    return "\n".join(lines) + "\n"


def build(entries) -> bytes:
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError("duplicate file names in .kfpkg: %s" % names)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("flash-list.json", flash_list_json(entries))
        for e in entries:
            z.writestr(e.name, e.data)
    return buf.getvalue()


def write(path, entries) -> Path:
    return write_atomic(path, build(entries))
