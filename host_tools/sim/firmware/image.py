"""image: MaixPy's Image on numpy arrays (RGB565 byte-swapped like the firmware, or grayscale).

An image may carry the planar "AI" buffer the KPU reads (R plane, G plane, B plane). sensor.snapshot() fills it
from the camera; resize() and images loaded from files have none until pix_to_ai() builds it. Images made by
image.Image(), copy(), resize() ... are charged to the GC heap (MemoryError when it is full); the frame buffer
returned by snapshot() is not (it is the sensor's memory). Text uses PIL's bitmap font, not the firmware's
8x10 glyphs: positions and colours match, glyph shapes do not.
"""
import io as host_io

import numpy as np
from PIL import Image as PILImage, ImageDraw, ImageFont

from host_tools.k210 import pixels as col
from host_tools.sim.clock import COSTS
from host_tools.sim.firmware.runtime import Runtime, make_module

GRAYSCALE = 1   # bpp codes returned by Image.format() and taken by sensor.set_pixformat()
RGB565 = 2
_FONT = ImageFont.load_default_imagefont() if hasattr(ImageFont, "load_default_imagefont") \
    else ImageFont.load_default()
LOADABLE = (".bmp", ".jpg", ".jpeg", ".ppm", ".pgm")


def _vec(args, n, what):
    """The firmware's py_helper_consume_array: n ints as one tuple or as n positional arguments."""
    if args and isinstance(args[0], (tuple, list)):
        v = tuple(args[0])
        rest = args[1:]
    else:
        v = tuple(args[:n])
        rest = args[n:]
    if len(v) != n:
        raise TypeError("%s: expected %d values, got %d" % (what, n, len(v)))
    return tuple(int(x) for x in v), rest


def build_image(rt: Runtime):
    def cost(npix):
        rt.advance(npix * COSTS["pixel_op_ns"] / 1000.0)

    class Image:
        def __init__(self, path=None, *, copy_to_fb=False, size=None, _px=None, _fb=False):
            rt.checkpoint()
            self._fb = _fb
            self._ai = None
            if _px is not None:
                px = _px
            elif path is not None:
                px = _load(path)
            else:
                w, h = (int(size[0]), int(size[1])) if size is not None else (320, 240)
                px = np.zeros((h, w), dtype=np.uint16)
            self._px = px
            if not _fb:
                rt.gc.alloc(self, px.nbytes)

        # -- basic info --
        def width(self):
            return int(self._px.shape[1])

        def height(self):
            return int(self._px.shape[0])

        def format(self):
            return RGB565 if self._px.dtype == np.uint16 else GRAYSCALE

        def size(self):
            return int(self._px.nbytes)

        def __repr__(self):
            return '{"w":%d, "h":%d, "type"="%s", "size":%d}' % (
                self.width(), self.height(), "rgb565" if self.format() == RGB565 else "grayscale", self.size())

        def _gray(self):
            return self._px.dtype == np.uint8

        def _color(self, c):
            return col.to_gray(c) if self._gray() else col.to_565(c)

        def _rgb(self):
            if self._gray():
                return np.stack([self._px] * 3, axis=-1)
            return col.rgb565_to_888(self._px)

        # -- pixels --
        def get_pixel(self, x, y=None, rgbtuple=None):
            rt.checkpoint()
            if isinstance(x, (tuple, list)):
                x, y = x
            x, y = int(x), int(y)
            if not (0 <= x < self.width() and 0 <= y < self.height()):
                return None
            v = self._px[y, x]
            if self._gray():
                return int(v)
            return tuple(int(c) for c in col.rgb565_to_888(np.array([[v]], dtype=np.uint16))[0, 0])

        def set_pixel(self, x, y, c=None):
            rt.checkpoint()
            x, y = int(x), int(y)
            if 0 <= x < self.width() and 0 <= y < self.height():
                self._px[y, x] = self._color(c)
            return self

        # -- drawing (all return self, like the firmware) --
        def _paint(self, fn, c):
            mask = PILImage.new("1", (self.width(), self.height()), 0)
            fn(ImageDraw.Draw(mask))
            m = np.asarray(mask, dtype=bool)
            self._px[m] = self._color(c)
            cost(int(m.sum()))
            return self

        def draw_rectangle(self, *args, color=None, thickness=1, fill=False):
            rt.checkpoint()
            (x, y, w, h), rest = _vec(args, 4, "draw_rectangle")
            color = rest[0] if len(rest) > 0 else color
            thickness = rest[1] if len(rest) > 1 else thickness
            fill = rest[2] if len(rest) > 2 else fill
            if w <= 0 or h <= 0:
                return self
            return self._paint(lambda d: d.rectangle([x, y, x + w - 1, y + h - 1], fill=1 if fill else None,
                                                     outline=1, width=max(1, int(thickness))), color)

        def draw_line(self, *args, color=None, thickness=1):
            rt.checkpoint()
            (x0, y0, x1, y1), rest = _vec(args, 4, "draw_line")
            color = rest[0] if len(rest) > 0 else color
            thickness = rest[1] if len(rest) > 1 else thickness
            return self._paint(lambda d: d.line([x0, y0, x1, y1], fill=1, width=max(1, int(thickness))), color)

        def draw_circle(self, *args, color=None, thickness=1, fill=False):
            rt.checkpoint()
            (cx, cy, r), rest = _vec(args, 3, "draw_circle")
            color = rest[0] if len(rest) > 0 else color
            return self._paint(lambda d: d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=1 if fill else None,
                                                   outline=1, width=max(1, int(thickness))), color)

        def draw_cross(self, *args, color=None, size=5, thickness=1):
            rt.checkpoint()
            (x, y), rest = _vec(args, 2, "draw_cross")
            color = rest[0] if len(rest) > 0 else color
            s, t = int(size), max(1, int(thickness))

            def f(d):
                d.line([x - s, y, x + s, y], fill=1, width=t)
                d.line([x, y - s, x, y + s], fill=1, width=t)
            return self._paint(f, color)

        def draw_string(self, *args, color=None, scale=1, x_spacing=0, y_spacing=2, mono_space=False):
            rt.checkpoint()
            if len(args) >= 2 and isinstance(args[0], (tuple, list)):
                (x, y), text, rest = tuple(int(v) for v in args[0]), args[1], args[2:]
            else:
                if len(args) < 3:
                    raise TypeError("draw_string: expected x, y, text")
                x, y, text, rest = int(args[0]), int(args[1]), args[2], args[3:]
            color = rest[0] if len(rest) > 0 else color
            scale = rest[1] if len(rest) > 1 else scale
            if not scale > 0:
                raise OSError("Error: 0 < scale!")   # PY_ASSERT_TRUE_MSG raises OSError
            text = str(text)
            lines = text.split("\n")
            lw = max(1, max(len(l) for l in lines)) * 8
            lh = len(lines) * (10 + y_spacing)
            mask = PILImage.new("1", (lw, lh), 0)
            d = ImageDraw.Draw(mask)
            for i, line in enumerate(lines):
                for j, ch in enumerate(line):   # one 8-pixel cell per character, like the 8x10 firmware font
                    d.text((j * (8 + x_spacing) + 1, i * (10 + y_spacing)), ch, fill=1, font=_FONT)
            if scale != 1:
                mask = mask.resize((max(1, int(lw * scale)), max(1, int(lh * scale))), PILImage.NEAREST)
            m = np.asarray(mask, dtype=bool)
            h, w = self._px.shape
            x0, y0 = max(0, x), max(0, y)
            x1, y1 = min(w, x + m.shape[1]), min(h, y + m.shape[0])
            if x1 > x0 and y1 > y0:
                sub = m[y0 - y:y1 - y, x0 - x:x1 - x]
                self._px[y0:y1, x0:x1][sub] = self._color(color)
                cost(int(sub.size))
            return self

        def draw_image(self, img, x=0, y=0, x_scale=1.0, y_scale=1.0, mask=None, alpha=256):
            rt.checkpoint()
            if isinstance(x, (tuple, list)):
                x, y = x
            src = img._px if img._gray() == self._gray() else (
                col.rgb888_to_565(img._rgb()) if not self._gray() else img._rgb().mean(axis=2).astype(np.uint8))
            if x_scale != 1 or y_scale != 1:
                nw, nh = max(1, int(src.shape[1] * x_scale)), max(1, int(src.shape[0] * y_scale))
                ys = (np.arange(nh) * src.shape[0] // nh)
                xs = (np.arange(nw) * src.shape[1] // nw)
                src = src[ys][:, xs]
            h, w = self._px.shape
            x, y = int(x), int(y)
            x0, y0, x1, y1 = max(0, x), max(0, y), min(w, x + src.shape[1]), min(h, y + src.shape[0])
            if x1 > x0 and y1 > y0:
                self._px[y0:y1, x0:x1] = src[y0 - y:y1 - y, x0 - x:x1 - x]
                cost((x1 - x0) * (y1 - y0))
            return self

        def invert(self):
            rt.checkpoint()
            self._px[:] = ~self._px if not self._gray() else 255 - self._px
            cost(self._px.size)
            return self

        def clear(self):
            rt.checkpoint()
            self._px[:] = 0
            return self

        # -- new images --
        def copy(self, roi=None, copy_to_fb=False):
            rt.checkpoint()
            x, y, w, h = roi if roi is not None else (0, 0, self.width(), self.height())
            out = Image(_px=self._px[y:y + h, x:x + w].copy())
            cost(out._px.size)
            return out

        def cut(self, x, y, w, h):
            return self.copy((int(x), int(y), int(w), int(h)))

        def resize(self, w, h):
            rt.checkpoint()
            w, h = int(w), int(h)
            px = col.resize(self._px, w, h)
            cost(w * h)
            return Image(_px=px)

        def to_grayscale(self, copy=False):
            rt.checkpoint()
            if self._gray():
                return self.copy() if copy else self
            g = col.luma(self._rgb())
            cost(g.size)
            if copy:
                return Image(_px=g)
            self._px = g          # in place: the buffer is reused, so the GC charge stays as it was
            self._ai = None
            return self

        def pix_to_ai(self):
            rt.checkpoint()
            if self._ai is None and not self._fb:
                # the firmware xallocs the AI buffer on the GC heap, rows padded to 64 bytes
                w, h = self.width(), self.height()
                ai_bytes = w * h if self._gray() else ((w + 63) & ~63) * h * 3
                rt.gc.alloc(self, ai_bytes)
            self._ai = col.ai_planes(self._px)
            cost(self._px.size)
            return None

        def to_bytes(self):
            rt.checkpoint()
            return self._px.tobytes()

        def save(self, path, roi=None, quality=50):
            rt.checkpoint()
            host = rt.fs.host_path_for_open(path, "wb")
            im = PILImage.fromarray(self._px if self._gray() else self._rgb())
            fmt = {".bmp": "BMP", ".jpg": "JPEG", ".jpeg": "JPEG", ".ppm": "PPM", ".pgm": "PPM"}.get(
                host.suffix.lower())
            if fmt is None:
                raise OSError("Image format is not supported.")
            im.save(host, fmt, **({"quality": int(quality)} if fmt == "JPEG" else {}))
            return self

    def _load(path):
        host = rt.fs.host_path_for_open(path, "rb")
        if host.suffix.lower() not in LOADABLE:
            raise OSError("Image format is not supported.")
        im = PILImage.open(host_io.BytesIO(host.read_bytes()))
        if im.mode == "L" and host.suffix.lower() == ".pgm":
            return np.asarray(im).copy()
        return col.rgb888_to_565(np.asarray(im.convert("RGB")))

    mod = make_module(rt, "image", {})
    mod.Image = Image
    mod.RGB565, mod.GRAYSCALE = RGB565, GRAYSCALE
    return mod
