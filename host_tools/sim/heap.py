"""Memory accounting of the two heaps that matter on a K210 running MaixPy.

GcHeap: the MicroPython heap (images live here). Like MicroPython, memory of a dropped object comes back only at
the next collection (gc.collect(), or automatically when an allocation does not fit), not when the last
reference goes. SysHeap: malloc'd memory (kmodels, camera and LCD buffers), freed explicitly.
"""
import gc as host_gc
import weakref


class GcHeap:
    def __init__(self, size: int, used_at_boot: int):
        self.size = size
        self.base = used_at_boot     # what the interpreter itself holds; not modelled object by object
        self.live = 0                # bytes held by live simulated objects
        self.garbage = 0             # bytes of dropped objects not yet collected
        self.collections = 0

    def used(self) -> int:
        return self.base + self.live + self.garbage

    def free(self) -> int:
        return self.size - self.used()

    def alloc(self, owner, nbytes: int) -> None:
        """Charge `nbytes` to `owner` until it is dropped and then collected; MemoryError like MicroPython."""
        nbytes = (int(nbytes) + 15) & ~15  # GC blocks are 16 bytes
        if nbytes > self.free():
            host_gc.collect()          # run finalizers of unreachable simulated objects first
            self.collect()
        if nbytes > self.free():
            raise MemoryError("memory allocation failed, allocating %d bytes" % nbytes)
        self.live += nbytes
        weakref.finalize(owner, self._dropped, nbytes)

    def _dropped(self, nbytes: int) -> None:
        self.live -= nbytes
        self.garbage += nbytes

    def collect(self) -> None:
        self.garbage = 0
        self.collections += 1


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
