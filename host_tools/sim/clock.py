"""The virtual board's clock: deterministic microseconds that advance only through the simulated firmware.

Nothing reads the host's wall clock. Time moves when device code sleeps, when a simulated operation costs time
(COSTS below: estimates for a Maix Bit, not measurements of this PC) and by a small fixed amount on every call
into a simulated module, so a busy-wait on ticks_ms() ends like it does on the board.
"""
from dataclasses import dataclass

from host_tools.k210 import cost

# What the firmware modules charge on a Maix Bit. The camera, image, LCD and region-layer figures come from the
# K210 cost model (host_tools/k210/cost.py), as do kpu.load and kpu.forward (through kmodel/board_time.py).
COSTS = {
    "call_us": 20,                 # any call into a firmware module (MicroPython call overhead)
    "uart_us_per_char": round(cost.uart_us(1)),    # print() over the REPL UART
    "camera_fps": cost.CAMERA_FPS,
    "snapshot_us": cost.snapshot_us(320 * 240),    # handing over a finished QVGA frame
    "lcd_bytes_per_s_per_hz": cost.LCD_BITS_PER_CLOCK / 8,
    "pixel_op_ns": cost.pixel_op_us(1) * 1000,     # image drawing/cut/resize/pix_to_ai per touched pixel
    "gc_collect_us": 2_000,        # gc.collect() of the 512 KiB GC heap (mark the live objects, sweep 16k blocks)
}

TICKS_PERIOD = 1 << 30  # MicroPython's ticks_* wrap period


@dataclass
class Clock:
    now_us: int = 0

    def ticks_ms(self) -> int:
        return (self.now_us // 1000) % TICKS_PERIOD

    def ticks_us(self) -> int:
        return self.now_us % TICKS_PERIOD

    @property
    def ms(self) -> float:
        return self.now_us / 1000.0
