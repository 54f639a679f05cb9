"""The 2 MiB KPU RAM: where a (c, h, w) map lies in it, and the RAM itself, written lazily.

A conv layer's output usually goes straight to the next layer, which reads it back with the very same layout.
KpuRam keeps such outputs as arrays and writes them into the byte array only when something reads the bytes
differently (another layout, an overlapping map) or a CPU layer writes there, so the common case copies nothing.
The bytes a reader sees are the same as with eager writes: pending maps are written oldest first, before any
access that overlaps them. A pending map may even be Deferred, not computed yet (a depthwise layer whose next
layer, a 1x1 conv, has it computed into its own GEMM columns): a reader that asks for it gets the Deferred,
any other access computes it first.
"""
from dataclasses import dataclass
from enum import Enum

import numba
import numpy as np
from numpy.lib.stride_tricks import as_strided

from host_tools.k210 import kpu as hw


def ram_index(addr: int, shape, groups: int, row_len: int, ch_switch: int) -> np.ndarray:
    """Byte offsets in KPU RAM of a (c, h, w) map placed by the layout registers (addr in 64-byte rows)."""
    c, h, w = shape
    pitch = 64 // groups
    ch = np.arange(c)
    base = addr * 64 + (ch // groups) * ch_switch * 64 + (ch % groups) * pitch
    return (base[:, None, None] + (np.arange(h) * row_len * 64)[None, :, None] + np.arange(w)[None, None, :])


def rule_index(addr: int, shape) -> np.ndarray:
    """Byte offsets of a map uploaded by the runtime (SDK kpu_upload_core: layout from the width alone)."""
    c, h, w = shape
    lay = hw.row_layout(w)
    return ram_index(addr, shape, lay.groups, lay.row_len, lay.row_len * h)


class RamMap:
    """A (c, h, w) map in KPU RAM as strided views (no index arrays); the reader has bounds-checked it."""

    def __init__(self, addr, shape, groups, row_len, ch_switch):
        c, h, w = shape
        self.shape, self.addr, self.g = shape, addr, groups
        self.pitch, self.line, self.cs = 64 // groups, row_len * 64, ch_switch * 64
        last = addr * 64 + (-(-c // groups) - 1) * self.cs + (min(c, groups) - 1) * self.pitch \
            + (h - 1) * self.line + w
        if last > hw.RAM_BYTES:
            raise ValueError("map %s at row %d runs past KPU RAM" % (shape, addr))
        self.span = (addr * 64, last)          # bytes [lo, hi) it touches (and some gaps)
        self.key = (addr, tuple(shape), groups, self.line, self.cs)

    def offsets(self) -> np.ndarray:
        """Each byte's offset in KPU RAM, as a (c, h, w) array."""
        return ram_index(self.addr, self.shape, self.g, self.line // 64, self.cs // 64)

    def read(self, ram, origin=0) -> np.ndarray:
        c, h, w = self.shape
        if self.g == 1:
            return as_strided(ram[self.addr * 64 - origin:], (c, h, w), (self.cs, self.line, 1))
        y = np.empty(self.shape, np.uint8)
        _get_map(ram, y, self.addr * 64 - origin, self.g, self.cs, self.pitch, self.line)
        return y

    def write(self, ram, y, origin=0, groups=None):
        k0, k1 = groups or (0, -(-self.shape[0] // self.g))
        _put_map(ram, y, self.addr * 64 - origin, self.g, self.cs, self.pitch, self.line, k0 * self.g,
                 min(self.shape[0], k1 * self.g))

    def groups_in(self, lo: int, hi: int):
        """(first, end) channel groups with a byte in [lo, hi), and the bytes [lo, hi) they span."""
        c, h, w = self.shape
        n = -(-c // self.g)
        start, size = self.addr * 64, (min(c, self.g) - 1) * self.pitch + (h - 1) * self.line + w
        if self.cs <= 0:
            return (0, n), self.span
        k0 = min(n, max(0, -(-(lo - start - size + 1) // self.cs)))
        k1 = min(n, max(k0, -(-(hi - start) // self.cs)))
        return (k0, k1), (start + k0 * self.cs, start + (k1 - 1) * self.cs + size)


class Layout(Enum):
    """How a (c, h, w) map is held between layers."""
    CHW = "chw"                  # a numpy array (c, h, w), any strides
    PIXEL_MAJOR = "pixel-major"  # a (c, h, w) view of a C-contiguous (h, w, c) array (pixel_major gives it)
    DEFERRED = "deferred"        # a Deferred: not computed yet


def layout(x) -> Layout:
    if isinstance(x, Deferred):
        return Layout.DEFERRED
    c, h, w = x.shape
    if x.flags.c_contiguous and c > 1 and h * w > 1:      # the common case, told without a view
        return Layout.CHW
    return Layout.PIXEL_MAJOR if pixel_major(x) is not None else Layout.CHW


def pixel_major(x):
    """The (h, w, c) array whose transposed view the (c, h, w) map x is, or None."""
    if isinstance(x, np.ndarray) and x.ndim == 3:
        t = x.transpose(1, 2, 0)
        if t.flags.c_contiguous:
            return t
    return None


@dataclass
class Deferred:
    """A conv layer's output map, computed on first use by plan.forward(x): for a reader that needs only some of
    its pixels and can ask the plan for them (kpu_fast.FastConv.forward)."""
    plan: object
    x: np.ndarray
    _full: np.ndarray = None

    def array(self) -> np.ndarray:
        if self._full is None:
            self._full = self.plan.forward(self.x)
        return self._full

    def keep(self, y: np.ndarray):
        """The whole map, computed by its reader anyway (the caller must not change it afterwards)."""
        self._full = y


def _array(a):
    return a.array() if isinstance(a, Deferred) else a


@numba.njit(cache=True, nogil=True)
def _put_map(ram, y, base, g, cs, pitch, line, c0, c1):
    """Channels c0..c1 of the (c, h, w) map y (any strides) into ram at the layout: compiled, as numpy's strided
    copies cost a loop per row of a few bytes."""
    _, h, w = y.shape
    for c in range(c0, c1):
        off = base + (c // g) * cs + (c % g) * pitch
        for r in range(h):
            for i in range(w):
                ram[off + r * line + i] = y[c, r, i]


@numba.njit(cache=True, nogil=True)
def _put_bytes(buf, origin, idx, values):
    """buf[i - origin] = v for the CPU-written bytes (i, v) that fall inside buf."""
    for k in range(idx.size):
        i = idx[k] - origin
        if 0 <= i < buf.size:
            buf[i] = values[k]


@numba.njit(cache=True, nogil=True)
def _get_map(ram, y, base, g, cs, pitch, line):
    """The inverse of _put_map, into the (c, h, w) array y."""
    c, h, w = y.shape
    for ch in range(c):
        off = base + (ch // g) * cs + (ch % g) * pitch
        for r in range(h):
            for i in range(w):
                y[ch, r, i] = ram[off + r * line + i]


def spans_overlap(a, b) -> bool:
    """Whether byte spans [lo, hi) a and b share a byte."""
    return a[0] < b[1] and b[0] < a[1]


class KpuRam:
    """KPU RAM for one run: `read`/`write` whole maps (conv layers), `ram[idx] = v` bytes (CPU layers).

    Writes are kept pending, in order. A read of the map the newest overlapping write wrote is that write's
    array; any other read rebuilds just its byte span from the bytes under it and the pending writes that
    overlap it, oldest first, in a scratch copy (nothing is flushed, so order is kept for later reads)."""

    def __init__(self):
        self._bytes = None      # all zeros until something is written through (most runs never do)
        # (RamMap, array, span) or (None, (byte offsets, values), span), oldest first, by the map's key (a new write
        # of the same map replaces its entry and goes last) or, for CPU-written bytes, a key of their own
        self.pending = {}

    @property
    def bytes(self) -> np.ndarray:
        if self._bytes is None:
            self._bytes = np.zeros(hw.RAM_BYTES, np.uint8)
        return self._bytes

    def _zeros_or(self, lo: int, hi: int) -> np.ndarray:
        """A copy of bytes [lo, hi)."""
        return np.zeros(hi - lo, np.uint8) if self._bytes is None else self._bytes[lo:hi].copy()

    def write(self, mp: RamMap, y):
        """Place y (an array or a Deferred) at mp; an array is kept as it is (the caller must not change it
        afterwards)."""
        self.pending.pop(mp.key, None)      # wholly overwritten
        self.pending[mp.key] = (mp, y, mp.span)

    def __setitem__(self, idx, values):
        idx = np.asarray(idx)
        if idx.size:
            self.put(idx.reshape(-1), (int(idx.min()), int(idx.max()) + 1),
                     np.broadcast_to(values, idx.shape).reshape(-1).copy())

    def put(self, idx: np.ndarray, span, values: np.ndarray):
        """ram[idx] = values for flat arrays the caller keeps unchanged, span = (min(idx), max(idx) + 1)."""
        self.pending[object()] = (None, (idx, values), span)

    def read(self, mp: RamMap, deferred: bool = False):
        """The map at mp (read-only: it may be a pending array itself); with deferred=True, a Deferred that was
        written there as it is."""
        for m, a, span in reversed(self.pending.values()):     # newest first: usually the predecessor's output
            if spans_overlap(span, mp.span):
                if m is not None and m.key == mp.key:
                    return a if deferred else _array(a)
                break
        else:
            return mp.read(self._zeros_or(*mp.span), origin=mp.span[0])
        hits = [e[:2] for e in self.pending.values() if spans_overlap(e[2], mp.span)]
        for i in range(len(hits) - 1, 0, -1):       # the newest map holding all of mp hides what is older
            if hits[i][0] is not None and _covers(hits[i][0], mp):
                hits = hits[i:]
                break
        lo, hi = mp.span
        parts = []
        for m, a in hits:       # the channel groups of each map that hold bytes of mp, written whole
            g = None
            if m is not None:
                g, (glo, ghi) = m.groups_in(*mp.span)
                lo, hi = min(lo, glo), max(hi, ghi)
            parts.append((m, a, g))
        buf = self._zeros_or(lo, hi)
        for m, a, g in parts:
            if m is not None:
                m.write(buf, _array(a), origin=lo, groups=g)
            else:
                _put_bytes(buf, lo, *a)
        return np.ascontiguousarray(mp.read(buf, origin=lo))

    def flush(self):
        """Write every pending map into self.bytes, oldest first."""
        for m, a, _ in self.pending.values():
            if m is not None:
                m.write(self.bytes, _array(a))
            else:
                self.bytes[a[0]] = a[1]
        self.pending = {}


_COVERS = {}


def _covers(m: RamMap, mp: RamMap) -> bool:
    """Whether map m holds every byte of map mp (remembered per pair of layouts: a model has few)."""
    key = (m.key, mp.key)
    if key not in _COVERS:
        if len(_COVERS) > 1 << 14:
            _COVERS.clear()
        g, (glo, ghi) = m.groups_in(*mp.span)
        lo, hi = min(mp.span[0], glo), max(mp.span[1], ghi)
        mask = np.zeros(hi - lo, np.uint8)
        m.write(mask, np.ones(m.shape, np.uint8), origin=lo, groups=g)
        _COVERS[key] = bool(mp.read(mask, origin=lo).all())
    return _COVERS[key]
