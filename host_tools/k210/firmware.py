"""MaixPy firmware builds, their memory budgets, and which build and load mode a model needs.

Numbers follow ../shared/docs/maixpy-firmware-facts.md: GC heap 512 KiB by default; a model of about 2 MiB fits
the full build and about 4 MiB the minimum build once camera and LCD are up; V4 kmodels load only on builds
with V4 support; kpu.load_flash streams layers from flash, each below 2 MiB. The system-heap figure is what is
left after the firmware's own start-up; the camera's buffers are charged to it when the frame size is set and the
LCD's at lcd.init(). A model's budget counts a single-buffered camera (the app drops double buffering when a
model needs the room).
"""
from dataclasses import dataclass

from host_tools.k210 import errors
from host_tools.k210.memory import camera_buffers

KIB = 1024
MIB = 1024 * 1024

SRAM_BYTES = 6 * MIB                 # the K210's general SRAM: a kmodel's main memory can never exceed it
CAMERA_W, CAMERA_H = 320, 240        # QVGA: the frame the app takes, and the largest KPU input image
LCD_W, LCD_H = 320, 240
REPL_BAUD = 115200                   # the REPL UART (USB serial) MaixPy talks and prints on
# Camera: one RGB565 QVGA frame + one planar RGB888 AI buffer; LCD: one RGB565 frame buffer. Both come out of the
# system heap, which is why "about 2 MiB" is what remains for a model.
CAMERA_BUFFERS = camera_buffers(CAMERA_W, CAMERA_H, dual=False)   # dual_buff=True takes twice this
LCD_BUFFERS = LCD_W * LCD_H * 2
MAX_MODELS = 5                       # models loaded at once (ERR_MODELS_FULL beyond)
# kmodel V4 (nncase v0.2) on MaixPy: its C++ runtime needs about 360 KB more RAM than V3 for the same MobileNet
# (Sipeed forum topic 1790, "MaixPy support new nncase & Kmodel V4"); charged to each V4 model's heap. The same
# post measured 111 ms per V4 forward against 37 ms for V3 on that MobileNet (its matmul runs on the CPU): a
# figure for the board-time model of issue 16.
V4_RUNTIME_EXTRA = 360 * 1000
V4_SPEED_MS = {"mobilenet_v3_kmodel": 37, "mobilenet_v4_kmodel": 111}
FLASH_LAYER_LIMIT = 2 * MIB          # kpu.load_flash: each layer body strictly below this


@dataclass(frozen=True)
class FirmwareBuild:
    name: str
    sys_heap: int            # bytes of system heap (malloc) free after boot, before camera and LCD
    gc_heap: int             # bytes of MicroPython GC heap (Maix.utils.gc_heap_size default)
    gc_used_at_boot: int     # GC heap the interpreter itself holds after _boot.py (kpu.memtest shows ~490 KB free)
    kmodel_versions: tuple   # versions kpu.load accepts
    version_error: str       # the text of error 2002 on this build

    @property
    def model_budget(self) -> int:
        """System-heap bytes left for models once camera and LCD are up."""
        return self.sys_heap - CAMERA_BUFFERS - LCD_BUFFERS


BUILDS = {
    "full": FirmwareBuild("full", sys_heap=2 * MIB + CAMERA_BUFFERS + LCD_BUFFERS, gc_heap=512 * KIB,
                          gc_used_at_boot=22 * KIB, kmodel_versions=(3, 4),
                          version_error=errors.VERSION_TEXT_V3_V4),
    "minimum": FirmwareBuild("minimum", sys_heap=4 * MIB + CAMERA_BUFFERS + LCD_BUFFERS, gc_heap=512 * KIB,
                             gc_used_at_boot=18 * KIB, kmodel_versions=(3,),
                             version_error=errors.VERSION_TEXT_V3),
}
LOAD_MODES = ("ram", "flash")        # kpu.load (the whole kmodel in the system heap) | kpu.load_flash (big-endian)


def build(name: str) -> FirmwareBuild:
    if name not in BUILDS:
        raise ValueError("unknown firmware build %r, expected one of %s" % (name, ", ".join(BUILDS)))
    return BUILDS[name]


def model_budget(name: str) -> int:
    """System-heap bytes left for kpu.load once camera and LCD are up: what a model's heap must not exceed."""
    return build(name).model_budget


@dataclass(frozen=True)
class ModelMemory:
    """What a kmodel asks of the system heap (from host_tools.kmodel.netinfo)."""
    heap: int                # kpu.load into RAM
    heap_flash: int          # kpu.load_flash
    largest_layer: int       # bytes of the largest layer body


def loads(mem: ModelMemory, build_name: str, mode: str) -> bool:
    """The model loads on this build in this mode."""
    budget = model_budget(build_name)
    if mode == "ram":
        return mem.heap <= budget
    if mode == "flash":
        return mem.largest_layer < FLASH_LAYER_LIMIT and mem.heap_flash <= budget
    raise ValueError("unknown load mode %r, expected one of %s" % (mode, ", ".join(LOAD_MODES)))


LOAD_CALLS = {"ram": "kpu.load", "flash": "kpu.load_flash"}


@dataclass(frozen=True)
class Verdict:
    build: str               # the first build the model runs on, full preferred
    load: str                # its load mode there, RAM preferred
    fits: dict               # build name -> the model loads on it in that load mode

    def text(self) -> str:
        """E.g. "the minimum firmware build with kpu.load_flash (not the full build)"."""
        out = "the %s firmware build with %s" % (self.build, LOAD_CALLS[self.load])
        others = [b for b in BUILDS if not self.fits[b]]
        return out + (" (not the %s build)" % " or ".join(others) if others else " (every build)")


def verdict(mem: ModelMemory):
    """The firmware build and load mode a model needs (full before minimum, RAM before load_flash on each), or None
    when it loads on no build."""
    for name in BUILDS:
        for mode in LOAD_MODES:
            if loads(mem, name, mode):
                return Verdict(name, mode, {b: loads(mem, b, mode) for b in BUILDS})
    return None


def no_fit_reason(mem: ModelMemory) -> str:
    """Why a model loads on no build (verdict is None)."""
    roomiest = max(BUILDS.values(), key=lambda b: b.model_budget)
    if mem.largest_layer >= FLASH_LAYER_LIMIT:
        flash = "its largest layer (%d bytes) is too big for kpu.load_flash (each layer below %d)" % (
            mem.largest_layer, FLASH_LAYER_LIMIT)
    else:
        flash = "kpu.load_flash needs %d bytes" % mem.heap_flash
    return ("kpu.load needs %d bytes of system heap and %s; the %s build leaves %d bytes for models"
            % (mem.heap, flash, roomiest.name, roomiest.model_budget))
