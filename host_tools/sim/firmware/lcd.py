"""lcd: the Maix Bit's 320x240 ST7789 panel (omv/py/py_lcd.c). display() centres the image, cropping what is larger
and filling the borders black; every change is recorded on the board's Screen.

draw_string follows py_lcd_draw_string: it mallocs its text buffers first and returns early without freeing them
for an empty string, x >= width, y > width - 16 or no room for one character, so each such call loses
host_tools/k210/memory.py draw_string_buffers() bytes of system heap for good; the text is the firmware font,
monospaced (imlib_draw_ascii_string with mono_space), on a background strip 12 pixels high.
"""
import numpy as np

from host_tools.k210 import pixels as col
from host_tools.k210.memory import draw_string_buffers
from host_tools.sim.firmware.image import draw_text
from host_tools.sim.clock import COSTS
from host_tools.sim.firmware.runtime import Runtime, make_module

COLORS = dict(BLACK=0x0000, NAVY=0x0F00, DARKGREEN=0xE003, DARKCYAN=0xEF03, MAROON=0x0078, PURPLE=0x0F78,
              OLIVE=0xE07B, LIGHTGREY=0x18C6, DARKGREY=0xEF7B, BLUE=0x1F00, GREEN=0xE007, CYAN=0xFF07,
              RED=0x00F8, MAGENTA=0x1FF8, YELLOW=0xE0FF, WHITE=0xFFFF, ORANGE=0x20FD, GREENYELLOW=0xE5AF,
              PINK=0x1FF8)


def build_lcd(rt: Runtime, image_mod):
    scr = rt.board.screen
    st = {"init": False, "freq": 15_000_000, "rotation": 0, "mirror": False}

    def need_init():
        if not st["init"]:
            raise ValueError("not init")

    def transfer(npix):
        rt.advance(npix * 2 / (st["freq"] * COSTS["lcd_bytes_per_s_per_hz"]) * 1e6)

    def init(type=1, freq=15_000_000, color=0, width=320, height=240, invert=0, **kw):
        rt.charge_lcd()
        st.update(init=True, freq=int(freq))
        scr.buf[:] = col.to_565(color, 0)
        transfer(scr.width * scr.height)
        scr.record(rt.clock.ms, "init")

    def deinit():
        st["init"] = False

    def display(img, roi=None, oft=None):
        need_init()
        if not isinstance(img, image_mod.Image):
            raise TypeError("expected an image")
        px = img._px if not img._gray() else col.rgb888_to_565(img._rgb())
        if roi is not None:
            x, y, w, h = (int(v) for v in roi)
            px = px[y:y + h, x:x + w]
        h, w = px.shape
        W, H = scr.width, scr.height
        if oft is None:
            # centre: crop what is larger, pad what is smaller with black (py_lcd_display)
            if w > W:
                px = px[:, (w - W) // 2:(w - W) // 2 + W]
            if h > H:
                px = px[(h - H) // 2:(h - H) // 2 + H]
            h, w = px.shape
            l, t = (W - w) // 2, (H - h) // 2
            scr.buf[:] = 0
        else:
            l, t = int(oft[0]), int(oft[1])
            px = px[:max(0, H - t), :max(0, W - l)]
            h, w = px.shape
        scr.buf[t:t + h, l:l + w] = px
        transfer(W * H if oft is None else w * h)
        scr.shown += 1
        scr.record(rt.clock.ms, "display")

    def clear(*args, **kw):
        # py_lcd_clear reads positional arguments only: lcd.clear(color=...) clears to black on the board
        need_init()
        scr.buf[:] = col.to_565(args[0] if args else 0, 0)
        transfer(scr.width * scr.height)
        scr.record(rt.clock.ms, "clear")

    def draw_string(x, y, s, fg=COLORS["RED"], bg=COLORS["BLACK"]):
        need_init()
        W = scr.width
        buffers = rt.sys.alloc("lcd.draw_string", draw_string_buffers(W))
        if buffers is None:
            raise OSError(12)                      # MP_ENOMEM
        # from here on an early return keeps the buffers: py_lcd_draw_string frees them only after drawing
        x, y = int(x) & 0xFFFF, int(y) & 0xFFFF      # uint16_t x0, y0
        if not isinstance(s, str):
            raise TypeError("can't convert '%s' object to str implicitly" % type(s).__name__)
        if x >= W or y > W - 16:
            return None
        s = s[:max(0, (W - x) // 8)]
        if not s:
            return None
        tile = np.full((12, len(s) * 8), col.to_565(bg, 0), dtype=np.uint16)
        draw_text(tile, 0, 0, s, col.to_565(fg, 0), 1.0, 0, 0, True)
        h = max(0, min(12, scr.height - y))
        w = min(len(s) * 8, W - x)
        scr.buf[y:y + h, x:x + w] = tile[:h, :w]
        transfer(len(s) * 8 * 12)
        scr.record(rt.clock.ms, "draw_string")
        rt.sys.release(buffers)
        return None

    def fill_rectangle(x, y, w, h, color):
        need_init()
        x, y, w, h = int(x), int(y), int(w), int(h)
        if x >= scr.width or y >= scr.height or x + w >= scr.width or y + h >= scr.height:
            raise ValueError("arg error")
        scr.buf[y:y + h, x:x + w] = col.to_565(color, 0)
        scr.record(rt.clock.ms, "fill_rectangle")

    def rotation(r=None):
        if r is None:
            return st["rotation"]
        if not 0 <= int(r) <= 3:
            raise ValueError("value:[0,3]")
        st["rotation"] = int(r)
        return st["rotation"]

    def mirror(m=None):
        if m is not None:
            st["mirror"] = bool(m)
        return 1 if st["mirror"] else 0

    def freq(f=None):
        if f is not None:
            st["freq"] = int(f)
        return st["freq"]

    attrs = dict(init=init, deinit=deinit, display=display, clear=clear, draw_string=draw_string,
                 fill_rectangle=fill_rectangle, rotation=rotation, mirror=mirror, freq=freq,
                 width=lambda: scr.width, height=lambda: scr.height, type=lambda: 1 if st["init"] else None,
                 set_backlight=lambda s: None, get_backlight=lambda: None, direction=lambda d: None,
                 bgr_to_rgb=lambda *a: None)
    mod = make_module(rt, "lcd", attrs)
    for k, v in COLORS.items():
        setattr(mod, k, v)
    return mod
