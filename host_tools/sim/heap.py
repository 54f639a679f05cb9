"""The two heaps that matter on a K210 running MaixPy.

GcHeap: the MicroPython GC heap (images, the objects the firmware returns, imported code), block by block as
MicroPython v1.11's py/gc.c lays it out, so it fragments as the board's does:
- the pool is what gc_init leaves of the heap after its allocation and finaliser tables, in 32-byte blocks
  (host_tools/k210/memory.py);
- gc_alloc is first fit: it scans for a run of free blocks from gc_last_free_atb_index, which only a single-block
  allocation moves up (to the ATB after it) and a free or a collection moves down (to 0 after a collection);
- memory of a dropped object comes back only at the next collection (gc.collect(), or the one gc_alloc runs when
  no run is long enough, or gc.threshold()'s), never when its last reference goes;
- when no run is long enough even after that collection, the allocation fails: xalloc (omv/xalloc.c, used for
  image pixels and AI buffers) raises its MemoryError text, other allocations m_malloc_fail's.
Liveness comes from the host: a simulated object is live while device code references it (CPython's reference
count; a weakref finalizer marks its blocks garbage). Device code's own small objects (its tuples, strings,
floats) are not placed on this heap; the firmware's objects and buffers, and each imported module's code, are.

SysHeap: malloc'd memory (kmodels, camera and LCD buffers), freed explicitly; counted in bytes, not placed.
"""
import bisect
import weakref

from host_tools.k210.memory import BLOCKS_PER_ATB, GC_BLOCK as BLOCK, XALLOC_FAILED, malloc_failed, pool_blocks


class GcHeap:
    def __init__(self, size: int, used_at_boot: int):
        self.size = size
        self.blocks = pool_blocks(size)
        self.free_runs = [(0, self.blocks)]   # sorted, disjoint [start, end) runs of free blocks
        self.heads = {}                       # start block -> [n blocks, live?]
        self.last_free = 0                    # gc_last_free_atb_index * BLOCKS_PER_ATB
        self.threshold = None                 # gc.threshold(): collect when this many bytes were allocated since
        self.allocated_since = 0
        self.collections = 0
        self.before_sweep = None              # callable run first by every collection (host finalizers)
        self.on_collect = []                  # callables run after every collection (the GPIO IRQ table)
        self.permanent(used_at_boot)          # what the interpreter holds after _boot.py

    # -- what gc.mem_free() / mem_alloc() report --
    def free(self) -> int:
        return sum(e - s for s, e in self.free_runs) * BLOCK

    def used(self) -> int:
        return self.blocks * BLOCK - self.free()

    def largest_free(self) -> int:
        return max((e - s for s, e in self.free_runs), default=0) * BLOCK

    # -- gc_alloc --
    def _find(self, n: int):
        for s, e in self.free_runs:
            s = max(s, self.last_free)
            if e - s >= n:
                return s
        return None

    def _take(self, start: int, n: int) -> None:
        i = bisect.bisect_right(self.free_runs, (start, float("inf"))) - 1
        s, e = self.free_runs[i]
        pieces = [(a, b) for a, b in ((s, start), (start + n, e)) if b > a]
        self.free_runs[i:i + 1] = pieces
        if n == 1:
            self.last_free = (start + 1) // BLOCKS_PER_ATB * BLOCKS_PER_ATB

    def _place(self, nbytes: int, xalloc: bool) -> int:
        n = max(1, -(-int(nbytes) // BLOCK))
        if self.threshold is not None and self.allocated_since >= self.threshold:
            self.collect()
        start = self._find(n)
        if start is None:
            self.collect()
            start = self._find(n)
        if start is None:
            raise MemoryError(XALLOC_FAILED if xalloc else malloc_failed(int(nbytes)))
        self._take(start, n)
        self.heads[start] = [n, True]
        self.allocated_since += n * BLOCK
        return start

    def alloc(self, owner, nbytes: int, xalloc: bool = True) -> int:
        """Place nbytes for `owner` (any object that takes a weak reference) until it is dropped and then
        collected; returns the start block. MemoryError as the firmware raises it when no run fits."""
        start = self._place(nbytes, xalloc)
        weakref.finalize(owner, self._dropped, start)
        return start

    def permanent(self, nbytes: int) -> int:
        """Blocks nothing ever frees (the interpreter's own state, imported code)."""
        return self._place(nbytes, False) if nbytes > 0 else -1

    def _dropped(self, start: int) -> None:
        head = self.heads.get(start)
        if head is not None:
            head[1] = False

    # -- gc_collect / gc_free --
    def collect(self) -> None:
        """A collection: every dropped object's blocks come back (before_sweep first finds those the host holds
        only in reference cycles, and runs the firmware's finalisers)."""
        if self.before_sweep is not None:
            self.before_sweep()
        for start, (n, live) in list(self.heads.items()):
            if not live:
                self._release(start, n)
        self.last_free = 0
        self.allocated_since = 0
        self.collections += 1
        for hook in list(self.on_collect):
            hook()

    def _release(self, start: int, n: int) -> None:
        del self.heads[start]
        i = bisect.bisect_left(self.free_runs, (start, start))
        s, e = start, start + n
        if i > 0 and self.free_runs[i - 1][1] == s:
            i -= 1
            s = self.free_runs[i][0]
            del self.free_runs[i]
        if i < len(self.free_runs) and self.free_runs[i][0] == e:
            e = self.free_runs[i][1]
            del self.free_runs[i]
        self.free_runs.insert(i, (s, e))


class SysHeap:
    def __init__(self, size: int):
        self.size = size
        self.blocks = {}             # id -> (tag, bytes)
        self._next = 1

    def used(self) -> int:
        return sum(n for _, n in self.blocks.values())

    def free(self) -> int:
        return self.size - self.used()

    def alloc(self, tag: str, nbytes: int):
        """Reserve bytes; returns a handle, or None when they do not fit (the caller turns that into its error)."""
        if nbytes > self.free():
            return None
        h = self._next
        self._next += 1
        self.blocks[h] = (tag, int(nbytes))
        return h

    def release(self, handle) -> None:
        self.blocks.pop(handle, None)
