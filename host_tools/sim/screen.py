"""The Maix Bit's 320x240 LCD as a frame buffer plus a recorder of what was shown."""
from collections import deque

import numpy as np

from host_tools.k210.pixels import rgb565_to_888


class Frame:
    """One recorded LCD frame: (t_ms, RGB888 array, note) when unpacked or indexed; the RGB conversion happens
    only when someone looks, so recording every frame of a long soak stays cheap."""
    __slots__ = ("t_ms", "px", "note")

    def __init__(self, t_ms, px, note):
        self.t_ms, self.px, self.note = t_ms, px, note

    def __iter__(self):
        return iter((self.t_ms, rgb565_to_888(self.px), self.note))

    def __getitem__(self, i):
        return tuple(self)[i] if i == 1 or isinstance(i, slice) else (self.t_ms, None, self.note)[i]

    def __len__(self):
        return 3


class Screen:
    def __init__(self, width: int = 320, height: int = 240, keep: int = 1):
        self.width, self.height = width, height
        self.buf = np.zeros((height, width), dtype=np.uint16)   # swapped RGB565, as the panel receives it
        self.frames = deque(maxlen=max(1, keep))                 # Frame: (t_ms, RGB888, note)
        self.shown = 0                                           # lcd.display() calls so far
        self.updates = 0                                         # any change of the panel

    def record(self, t_ms: float, note: str = "") -> None:
        self.updates += 1
        self.frames.append(Frame(t_ms, self.buf.copy(), note))

    def rgb(self) -> np.ndarray:
        return rgb565_to_888(self.buf)
