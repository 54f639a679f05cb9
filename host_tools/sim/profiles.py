"""Firmware builds the virtual board can pretend to run: memory budgets and kmodel versions.

Numbers follow ../shared/docs/maixpy-firmware-facts.md: GC heap 512 KiB by default; a model of about 2 MiB
fits the full build and about 4 MiB the minimum build once camera and LCD are up; V4 kmodels load only on
builds with V4 support. The system-heap figure is what is left for models after the firmware's own start-up;
the camera and LCD buffers are charged to it when sensor.reset()/lcd.init() run (see COSTS in clock.py for
time, CAMERA_BUFFERS here for memory).
"""
from dataclasses import dataclass

KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class FirmwareProfile:
    name: str
    sys_heap: int            # bytes of system heap (malloc) free after boot, before camera and LCD
    gc_heap: int             # bytes of MicroPython GC heap (Maix.utils.gc_heap_size default)
    gc_used_at_boot: int     # GC heap the interpreter itself holds after _boot.py (kpu.memtest shows ~490 KB free)
    kmodel_versions: tuple   # versions kpu.load accepts
    version_error: str       # the text of error 2002 on this build


# Camera: one RGB565 QVGA frame + one planar RGB888 AI buffer; LCD: one RGB565 line buffer set. Charged to the
# system heap at sensor.reset() / lcd.init(), which is why "about 2 MiB" is what remains for a model.
CAMERA_BUFFERS = 320 * 240 * 2 + 320 * 240 * 3
LCD_BUFFERS = 320 * 240 * 2

PROFILES = {
    "full": FirmwareProfile("full", sys_heap=2 * MIB + CAMERA_BUFFERS + LCD_BUFFERS, gc_heap=512 * KIB,
                            gc_used_at_boot=22 * KIB, kmodel_versions=(3, 4),
                            version_error="ERR_KMODEL_VERSION: only support kmodel V3/V4 now"),
    "minimum": FirmwareProfile("minimum", sys_heap=4 * MIB + CAMERA_BUFFERS + LCD_BUFFERS, gc_heap=512 * KIB,
                               gc_used_at_boot=18 * KIB, kmodel_versions=(3,),
                               version_error="ERR_KMODEL_VERSION: only support kmodel V3"),
}


def profile(name: str) -> FirmwareProfile:
    if name not in PROFILES:
        raise ValueError("unknown firmware profile %r, expected one of %s" % (name, ", ".join(PROFILES)))
    return PROFILES[name]


def model_budget(name: str) -> int:
    """System-heap bytes left for kpu.load once camera and LCD are up: what a model's `heap` must not exceed."""
    return profile(name).sys_heap - CAMERA_BUFFERS - LCD_BUFFERS
