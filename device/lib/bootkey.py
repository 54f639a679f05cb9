# The BOOT key (IO16) as a debounced press counter. The IRQ handler only records; the main loop acts, and only
# once the key is up again, so no model load ever starts while the key is down: edges that come during a load
# are then a new press (counted once) plus its release bounce (ignored), never lost and never doubled.
import time
from board import board_info
from fpioa_manager import fm
from Maix import GPIO

SETTLE_MS = 30  # edges closer than this are contact bounce; the key is up once it has read 1 this long


def setup_pin():
    fm.register(board_info.BOOT_KEY, fm.fpioa.GPIOHS0)
    # No pull-up set from code: on IO16 that can upset automatic download into ISP mode.
    return GPIO(GPIO.GPIOHS0, GPIO.IN)


class BootKey:
    def __init__(self, pin=None):
        self.pin = pin if pin is not None else setup_pin()
        self.pending = 0
        self._last_edge = time.ticks_add(time.ticks_ms(), -10000)
        self._high_since = None
        # Down means: a press was counted (or the key was down at start) and the key has not been seen up since;
        # falling edges then are release bounce.
        self._down = self.pin.value() == 0
        # The firmware keeps the handler only in a static array the GC does not scan (Maix_gpio.c): a bound method
        # made for the call would be freed by the next gc.collect(). This attribute keeps it alive with the key.
        self._handler = self._irq
        self.pin.irq(self._handler, GPIO.IRQ_FALLING)

    def _irq(self, pin):
        now = time.ticks_ms()
        gap = time.ticks_diff(now, self._last_edge)
        self._last_edge = now
        self._high_since = None
        if gap < SETTLE_MS or self._down:
            return
        self._down = True
        self.pending += 1

    def poll(self):
        """Follow the key's level from the main loop (the IRQ sees only falling edges)."""
        if self.pin.value() == 0:
            self._high_since = None
            return
        now = time.ticks_ms()
        if self._high_since is None:
            self._high_since = now
        elif (time.ticks_diff(now, self._high_since) >= SETTLE_MS
              and time.ticks_diff(now, self._last_edge) >= SETTLE_MS):
            self._down = False

    def take(self):
        """Presses to act on now: those counted so far, once the key is up again; 0 while it is down."""
        self.poll()
        if self._down:
            return 0
        n = self.pending
        self.pending = 0
        return n
