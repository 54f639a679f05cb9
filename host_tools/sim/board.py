"""A virtual Maix Bit: what survives a reset (flash, file systems, the world around the board, the clock).

The firmware's run-time state (loaded models, heaps, imported modules) lives in a Session, which a reset
replaces. The Board holds:
- `flash`: the 16 MiB SPI flash image (bytearray, erased = 0xFF) that kpu.load(offset)/load_flash read;
- `/flash` and `/sd` as host folders (sd_root None = no card);
- the firmware build ('full' | 'minimum', host_tools/k210/firmware.py) that sets heap budgets and kmodel versions;
- the camera sensor model ('ov2640', what most Maix Bits carry, or 'gc0328'; they differ in set_windowing);
- the clock, the camera scene, the BOOT button script, the LCD panel and the console (UART) log.
"""
import tempfile
from pathlib import Path

from host_tools.k210 import firmware
from host_tools.k210.flash import FLASH_SIZE
from host_tools.sim.button import Button
from host_tools.sim.camera import Camera, load_sources, photo
from host_tools.sim.clock import Clock
from host_tools.sim.screen import Screen


class Board:
    def __init__(self, flash_root=None, sd_root=None, profile: str = "full", camera=None, hold_ms: float = 1500.0,
                 console_echo=None, keep_frames: int = 1, sensor: str = "ov2640"):
        if flash_root is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="maixbit-flash-")
            flash_root = self._tmp.name
        self.flash_root = Path(flash_root)
        self.flash_root.mkdir(parents=True, exist_ok=True)
        self.sd_root = Path(sd_root) if sd_root is not None else None
        if self.sd_root is not None:
            self.sd_root.mkdir(parents=True, exist_ok=True)
        self.profile = firmware.build(profile)
        self.flash = bytearray(b"\xff") * FLASH_SIZE
        self.clock = Clock()
        sources = load_sources(camera) if camera is not None else [("astronaut", photo("astronaut"))]
        self.camera = Camera(sources, hold_ms=hold_ms)
        self.camera_present = True
        self.sensor = sensor
        self.button = Button()
        self.screen = Screen(keep=keep_frames)
        self.console = []              # text written to the REPL UART, in order
        self.console_echo = console_echo  # callable(str) that also receives console text (a pty, stdout)

    # -- flash image --
    def write_flash(self, offset: int, data: bytes) -> None:
        if offset < 0 or offset + len(data) > FLASH_SIZE:
            raise ValueError("flash write at 0x%X of %d bytes runs past the 16 MiB flash" % (offset, len(data)))
        self.flash[offset:offset + len(data)] = data

    # -- console --
    def write_console(self, text: str) -> None:
        if not text:
            return
        self.console.append(text)
        if self.console_echo is not None:
            self.console_echo(text)

    def console_text(self) -> str:
        return "".join(self.console)

    # -- button --
    def press(self, at_ms: float = None, hold_ms: float = 120.0, bounce: int = 3, bounce_ms: float = 4.0):
        """Script a BOOT press at board time `at_ms` (default: now)."""
        return self.button.press(self.clock.ms if at_ms is None else at_ms, hold_ms, bounce, bounce_ms)
