"""Flash only what changed: compare the plan with the board's flash, block by block, through the REPL.

The board hashes its own flash (MaixPy's `Maix.utils.flash_read` + uhashlib) in 64 KiB blocks, the size of one
kflash write frame, so an unchanged model costs no transfer and no sector write, and a changed one only its
changed blocks. The firmware (written with kflash's SHA-256 header) is compared as a whole. When the board
cannot answer (no REPL, or no flash_read), everything planned is flashed and the reason is said.
"""
import ast
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from host_tools.deploy import kfpkg
from host_tools.deploy.layout import FlashPlan, Region
from host_tools.deploy.link import DeviceError, Link

BLOCK = 64 * 1024

FLASH_HASH_SNIPPET = """
from Maix import utils as _u
try:
 import uhashlib as _hl, ubinascii as _ba
except ImportError:
 import hashlib as _hl, binascii as _ba
def _fh(a,n):
 h=_hl.sha256()
 while n>0:
  k=4096 if n>4096 else n
  h.update(_u.flash_read(a,k))
  a+=k
  n-=k
 return _ba.hexlify(h.digest()).decode()
"""


@dataclass
class Span:
    region: Region
    offset: int
    size: int
    sha256: str


@dataclass
class FlashDiff:
    spans: list                               # every Span compared
    changed: list = field(default_factory=list)  # Spans that differ (or all, when the board could not tell)
    reason: str = ""                          # why everything is flashed, when it is

    @property
    def bytes_to_write(self):
        return sum(s.size for s in self.changed)


def spans_of(region: Region, data: bytes) -> list:
    if region.prefix:     # kflash writes the firmware header and payload in one go: all or nothing
        return [Span(region, region.offset, region.size, hashlib.sha256(data).hexdigest())]
    out = []
    a = region.offset
    while a < region.end:
        b = min(region.end, (a // BLOCK + 1) * BLOCK)
        piece = data[a - region.offset:b - region.offset]
        out.append(Span(region, a, b - a, hashlib.sha256(piece).hexdigest()))
        a = b
    return out


def board_hashes(link: Link, spans) -> list:
    code = FLASH_HASH_SNIPPET + "print(repr([_fh(a,n) for a,n in %r]))" % [(s.offset, s.size) for s in spans]
    text = link.exec(code, timeout=300).decode().strip()
    return ast.literal_eval(text)


def diff(plan: FlashPlan, link: Link = None) -> FlashDiff:
    spans = []
    for r in plan.regions():
        spans += spans_of(r, r.data())
    if link is None:
        return FlashDiff(spans, list(spans), "no REPL on the board to compare with")
    try:
        have = board_hashes(link, spans)
    except DeviceError as e:
        return FlashDiff(spans, list(spans), "the board could not read its flash (%s)" % e)
    return FlashDiff(spans, [s for s, h in zip(spans, have) if h != s.sha256])


def package_entries(d: FlashDiff) -> list:
    """kfpkg entries for the changed spans, adjacent spans of one region merged into one file."""
    entries = []
    run = []

    def flush():
        if not run:
            return
        r = run[0].region
        start, end = run[0].offset, run[-1].offset + run[-1].size
        data = r.data()
        if r.prefix:
            # kflash rebuilds the header itself: the package holds the plain .bin
            entries.append(kfpkg.Entry(0, "firmware.bin", Path(r.file).read_bytes(), True))
        else:
            entries.append(kfpkg.Entry(start, "%s_%06x.bin" % (r.name, start),
                                       data[start - r.offset:end - r.offset], False))
        run.clear()

    for s in d.changed:
        if run and (s.region is not run[-1].region or s.offset != run[-1].offset + run[-1].size):
            flush()
        run.append(s)
    flush()
    return entries
