"""How MaixPy lays out its two heaps: the MicroPython GC heap (py/gc.c v1.11 with MaixPy's mpconfigport.h) and the
malloc'd system heap, as far as the app's memory depends on it.

GC heap: gc_init splits the heap into an allocation table (2 bits per block), a finaliser table (1 bit per block,
MaixPy enables finalisers) and the pool; a block is MICROPY_BYTES_PER_GC_BLOCK = 4 words = 32 bytes on the K210's
64-bit core. Floats are boxed (MICROPY_OBJ_REPR_A), one block each.
"""
GC_BLOCK = 32               # bytes per GC block: 4 * sizeof(mp_uint_t) on RV64
BLOCKS_PER_ATB = 4          # blocks per allocation-table byte; gc_last_free_atb_index counts these
BLOCKS_PER_FTB = 8          # blocks per finaliser-table byte

# Sizes of the firmware objects the app creates, on RV64 (8-byte pointers). Estimates from their C structs.
IMAGE_OBJ_BYTES = 40        # py_image_obj_t: type + image_t (w, h, bpp, pixels, pix_ai)
FMAP_OBJ_BYTES = 48         # py_kpu_fmap_obj_t: type + fmap_t (data, size, index, w, h, ch, typecode)
NET_OBJ_BYTES = 64          # py_kpu_net_obj_t
FLOAT_BYTES = 16            # a boxed float (type + value): one block
TUPLE_BYTES = 16            # a tuple's header; then one word per item

XALLOC_FAILED = ("Out of normal MicroPython Heap Memory! Please reduce the resolution of the image you are running "
                 "this algorithm on to bypass this issue!")   # omv/xalloc.c xalloc_fail

# lcd.draw_string (py_lcd.c py_lcd_draw_string) mallocs a text buffer of (width / 8) * 12 * 8 * 2 bytes and a
# (width / 8 + 1)-byte copy of the string before it checks its arguments; it returns without freeing them for an
# empty string, x >= width, y > width - 16 (the panel's WIDTH, 304 on a 320-wide panel) or no room for a char.
def draw_string_buffers(lcd_width: int = 320) -> int:
    return (lcd_width // 8) * 12 * 8 * 2 + lcd_width // 8 + 1


def pool_blocks(heap_bytes: int) -> int:
    """Blocks in the pool gc_init makes of a heap of heap_bytes."""
    atb_len = heap_bytes * 8 // (8 + 8 * BLOCKS_PER_ATB // BLOCKS_PER_FTB + 8 * BLOCKS_PER_ATB * GC_BLOCK)
    return atb_len * BLOCKS_PER_ATB


def malloc_failed(nbytes: int) -> str:
    """The MemoryError text of a failed allocation that is not an xalloc (py/runtime.c m_malloc_fail)."""
    return "memory allocation failed, allocating %d bytes" % nbytes


def camera_buffers(w: int, h: int, dual: bool) -> int:
    """System-heap bytes sensor.set_framesize mallocs (omv/sensor.c sensor_set_framesize): per buffer the RGB565
    frame rounded up to 128 bytes and the planar RGB888 AI buffer rounded up to 64; two buffers with
    sensor.reset(dual_buff=True)."""
    one = (w * h * 2 + 127) // 128 * 128 + (w * h * 3 + 63) // 64 * 64
    return one * (2 if dual else 1)
