"""Copy files to the board's /flash or /sd over the raw REPL, safely and with few round trips.

- /flash is SPIFFS (no directories): device/lib/*.py is flattened next to boot.py and main.py, which is also
  where MaixPy's import finds them. Two files that flatten to one name are refused.
- One exec hashes every target file on the board (uhashlib.sha256); files whose hash matches are skipped.
- Each changed file is written to `<name>.part` and its hash checked on the board; then one exec renames them
  all over the old ones, models.json last. A dropped connection or a killed host leaves the old files (and
  stray .part files, removed at the next connection), never a half file or a mix of old and new app files.
- Data travels as bytes literals (base64 when shorter), DATA_PER_EXEC bytes per exec: a small file costs one
  round trip.
"""
import ast
import base64
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from host_tools.deploy.link import DeviceError, Link

DATA_PER_EXEC = 4096
PART = ".part"
FILESYSTEMS = ("/flash", "/sd")

HASH_SNIPPET = """
try:
 import uhashlib as _hl, ubinascii as _ba, uos as _os
except ImportError:
 import hashlib as _hl, binascii as _ba, os as _os
def _h(p):
 h=_hl.sha256()
 f=open(p,'rb')
 while True:
  b=f.read(4096)
  if not b:
   break
  h.update(b)
 f.close()
 return _ba.hexlify(h.digest()).decode()
"""


class SyncError(RuntimeError):
    """A file set that cannot be copied as asked; the message names the file."""


@dataclass
class SyncReport:
    copied: list = field(default_factory=list)     # device names written
    skipped: list = field(default_factory=list)    # device names already identical
    removed_parts: list = field(default_factory=list)
    bytes_copied: int = 0
    round_trips: int = 0

    def summary(self) -> str:
        if not self.copied:
            return "sync: %d files already up to date, nothing copied" % len(self.skipped)
        return "sync: copied %d files (%d bytes), %d unchanged" % (len(self.copied), self.bytes_copied,
                                                                  len(self.skipped))


def device_files(device_dir, target="/flash") -> dict:
    """{device name: host path} for device/: boot.py, main.py and lib/*.py, flattened on /flash. Refused before
    the board is touched: a folder without main.py, and a .py that MaixPy's MicroPython 1.11 cannot compile (the
    app would stop at its import on the board; MpyError names the file and line)."""
    from host_tools.deploy import mpy
    from host_tools.sim.provision import check_app
    device_dir = Path(device_dir)
    check_app(device_dir)
    files = {}
    for p in sorted(device_dir.rglob("*")):
        if not p.is_file() or "__pycache__" in p.parts or p.suffix in (".pyc",):
            continue
        rel = p.relative_to(device_dir)
        if target == "/flash" or rel.parts[0] == "lib":
            name = rel.name                # SPIFFS is flat; lib/ is on the import path only as the current dir
        else:
            name = rel.as_posix()
        if name in files:
            raise SyncError("%s and %s would both be %s/%s on the board" % (files[name], p, target, name))
        files[name] = p
    for p in files.values():
        if p.suffix == ".py":
            mpy.check(p.read_bytes(), str(p))
    return files


def _join(target, name):
    return target.rstrip("/") + "/" + name


def board_hashes(link: Link, target, names) -> tuple:
    """({name: (sha256 hex, size)} of those files that exist, [stray .part names], free bytes) in one round
    trip."""
    code = HASH_SNIPPET + """
_r={}
_p=[]
for _n in _os.listdir(%r):
 if _n.endswith(%r):
  _p.append(_n)
for _n in %r:
 try:
  _r[_n]=(_h(%r+'/'+_n),_os.stat(%r+'/'+_n)[6])
 except OSError:
  pass
_v=_os.statvfs(%r)
print(repr((_r,_p,_v[0]*_v[4])))
""" % (target, PART, list(names), target.rstrip("/"), target.rstrip("/"), target)
    text = link.exec(code, timeout=120).decode().strip()
    return ast.literal_eval(text)


def literal(piece: bytes) -> str:
    """Device source for these bytes: a bytes literal (text stays ~1x) or base64 when that is shorter (binary
    data as a literal grows up to 4x, and every byte of code is a byte on the serial line)."""
    lit = repr(piece)
    if len(lit) <= len(piece) * 4 // 3 + 40:
        return lit
    return "__import__('ubinascii').a2b_base64(%r)" % base64.b64encode(piece).decode()


def stage_file(link: Link, path: str, data: bytes, chunk=DATA_PER_EXEC) -> int:
    """Write data to `path.part` on the board and check its hash there (OSError 5 and no .part on a mismatch).
    The file at `path` is not touched. Returns round trips."""
    tmp = path + PART
    want = hashlib.sha256(data).hexdigest()
    pieces = [data[i:i + chunk] for i in range(0, len(data), chunk)] or [b""]
    for i, piece in enumerate(pieces):
        code = ""
        if i == 0:
            code += "_f=open(%r,'wb')\n" % tmp
        code += "_f.write(%s)\n" % literal(piece)
        if i == len(pieces) - 1:
            code += HASH_SNIPPET + """_f.close()
if _h(%r)!=%r:
 _os.remove(%r)
 raise OSError(5)
""" % (tmp, want, tmp)
        link.exec(code, timeout=60)
    return len(pieces)


def commit(link: Link, paths) -> int:
    """Rename each staged `path.part` over `path`, in order, in one exec: the board runs it to the end once it has
    it, so an interrupted host leaves either the old set of files or the new one (models.json goes last)."""
    if not paths:
        return 0
    link.exec("""import uos as _os
for _p in %r:
 try:
  _os.remove(_p)
 except OSError:
  pass
 _os.rename(_p+%r,_p)
""" % (list(paths), PART), timeout=60)
    return 1


def put_file(link: Link, path: str, data: bytes, chunk=DATA_PER_EXEC) -> int:
    """Write data to `path` on the board through `path.part` and a verified rename. Returns round trips."""
    return stage_file(link, path, data, chunk) + commit(link, [path])


def sync(link: Link, files: dict, target="/flash", log=print) -> SyncReport:
    """Make `target` on the board hold `files` ({device name: host path or bytes}); copy only what differs."""
    if target not in FILESYSTEMS:
        raise SyncError("target %r: the board has %s" % (target, " and ".join(FILESYSTEMS)))
    start = link.round_trips
    blobs = {n: (v if isinstance(v, (bytes, bytearray)) else Path(v).read_bytes()) for n, v in files.items()}
    report = SyncReport()
    try:
        have, parts, free = board_hashes(link, target, sorted(blobs))
    except DeviceError as e:
        raise SyncError("%s: cannot list the board's %s: %s" % (link.port, target, e)) from None
    changed = [n for n in blobs if have.get(n, ("",))[0] != hashlib.sha256(blobs[n]).hexdigest()]
    # Every changed file is staged beside the old one before the renames, so all of them need room at once.
    need = sum(len(blobs[n]) for n in changed)
    if changed and need > free:
        big = sorted(changed, key=lambda n: -len(blobs[n]))[:3]
        raise SyncError("%s has %d bytes free, copying needs about %d (largest: %s); nothing was written"
                        % (target, free, need, ", ".join("%s %d B" % (n, len(blobs[n])) for n in big)))
    for p in parts:
        link.exec("import os\nos.remove(%r)" % _join(target, p))
        report.removed_parts.append(p)
    # models.json last: the app reads it at start, and it must never name files or flash the board lacks
    order = sorted(blobs, key=lambda n: (n == "models.json", n))
    for name in order:
        data = bytes(blobs[name])
        if name not in changed:
            report.skipped.append(name)
            continue
        try:
            stage_file(link, _join(target, name), data)
        except DeviceError as e:
            raise SyncError("%s: copying to %s failed on the board: %s" % (name, _join(target, name), e)) from None
        report.copied.append(name)
        report.bytes_copied += len(data)
        log("  staged %s (%d bytes)" % (_join(target, name), len(data)))
    try:
        commit(link, [_join(target, n) for n in report.copied])
    except DeviceError as e:
        raise SyncError("%s: renaming the staged files failed on the board: %s" % (target, e)) from None
    if report.copied:
        log("  renamed %d staged files into place%s" % (len(report.copied), ", models.json last"
                                                        if "models.json" in report.copied else ""))
    report.round_trips = link.round_trips - start
    return report
