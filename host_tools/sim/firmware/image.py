"""image: MaixPy's Image on numpy arrays (RGB565 byte-swapped like the firmware, or grayscale), omv/py/py_image.c.

An image may carry the planar "AI" buffer the KPU reads (R plane, G plane, B plane). sensor.snapshot() fills it
from the camera; resize(), cut() and images loaded from files have none until pix_to_ai() builds it
(py_image_pix_to_ai xallocs it once, ((w + 63) & ~63) * h * 3 bytes, and reuses it on later calls).
GC heap (host_tools/sim/heap.py): each image object is one allocation, and the pixels of image.Image(), copy(),
cut() and resize() (xalloc'd before the object, as py_image() is called after them) another, as is the AI buffer;
a snapshot's pixels are the sensor's frame buffer (system heap), only its image object is new on every call.
resize() and cut() compute what py_image_resize / py_image_cut do (host_tools/k210/pixels.py).
Text: the firmware's 8x12 font layout (host_tools/k210/font.py: cells, proportional advances, newlines, the box
for unknown characters); glyph shapes are PIL's bitmap font placed at the firmware's inked columns.
"""
import functools
import io as host_io

import numpy as np
from PIL import Image as PILImage, ImageDraw, ImageFont

from host_tools.k210 import font, pixels as col
from host_tools.k210.memory import IMAGE_OBJ_BYTES
from host_tools.sim.clock import COSTS
from host_tools.sim.firmware.runtime import Runtime, make_module

GRAYSCALE = 1   # bpp codes returned by Image.format() and taken by sensor.set_pixformat()
RGB565 = 2
LOADABLE = (".bmp", ".jpg", ".jpeg", ".ppm", ".pgm")


@functools.lru_cache(maxsize=None)
def glyph(ch: str) -> np.ndarray:
    """The 12 x 8 cell of a printable character: PIL's bitmap glyph centred on the columns the firmware's glyph
    inks."""
    pil_font = ImageFont.load_default_imagefont() if hasattr(ImageFont, "load_default_imagefont") \
        else ImageFont.load_default()
    im = PILImage.new("1", (16, font.CELL_H), 0)
    ImageDraw.Draw(im).text((4, 0), ch, fill=1, font=pil_font)
    a = np.asarray(im, dtype=bool)
    cols = np.flatnonzero(a.any(axis=0))
    cell = np.zeros((font.CELL_H, font.CELL_W), dtype=bool)
    extent = font.ink(ch)
    if extent is None or not cols.size:
        return cell
    src = a[:, cols[0]:cols[-1] + 1]
    left = extent[0] + (extent[1] - extent[0] + 1 - src.shape[1]) // 2    # centred on the firmware glyph's ink
    left = min(max(0, left), font.CELL_W - min(src.shape[1], font.CELL_W))
    src = src[:, :font.CELL_W - left]
    cell[:, left:left + src.shape[1]] = src
    return cell


def text_mask(text: str, scale: float, x_spacing: int, y_spacing: int, mono_space: bool):
    """(mask, x0, y0): where imlib_draw_ascii_string sets pixels for text drawn at (0, 0), as a boolean mask whose
    top-left corner is at (x0, y0) (a proportional first glyph can start left of 0)."""
    items, _ = font.layout(text, 0, 0, scale, x_spacing, y_spacing, mono_space)
    if not items:
        return np.zeros((0, 0), dtype=bool), 0, 0
    gw, gh = int(font.CELL_W * scale), int(font.CELL_H * scale)
    boxes = [(it[2], it[3], gw, gh) if it[0] == "glyph" else (it[1], it[2], it[3], it[4]) for it in items]
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    mask = np.zeros((max(b[1] + b[3] for b in boxes) - y0, max(b[0] + b[2] for b in boxes) - x0), bool)
    ys = (np.arange(gh) / scale).astype(np.int64)          # imlib_draw_font: row (int)(y / scale) of the glyph
    xs = (np.arange(gw) / scale).astype(np.int64)
    thick = max(1, int(scale))
    for it in items:
        if it[0] == "glyph":
            _, ch, gx, gy = it
            cell = glyph(ch)[ys][:, xs]
            mask[gy - y0:gy - y0 + gh, gx - x0:gx - x0 + gw] |= cell
        else:                                              # imlib_draw_rectangle outline, `thick` pixels wide
            _, bx, by, bw, bh = it
            if bw > 0 and bh > 0:
                sub = np.zeros((bh, bw), dtype=bool)
                sub[:thick], sub[-thick:], sub[:, :thick], sub[:, -thick:] = True, True, True, True
                mask[by - y0:by - y0 + bh, bx - x0:bx - x0 + bw] |= sub
    return mask, x0, y0


def draw_text(px: np.ndarray, x: int, y: int, text: str, value, scale: float = 1.0, x_spacing: int = 0,
              y_spacing: int = 2, mono_space: bool = False) -> int:
    """Set the pixels text covers at (x, y) to value, clipped to the image (imlib_set_pixel); returns the area
    touched."""
    mask, mx, my = text_mask(text, scale, x_spacing, y_spacing, mono_space)
    h, w = px.shape
    x, y = x + mx, y + my
    x0, y0 = max(0, x), max(0, y)
    x1, y1 = min(w, x + mask.shape[1]), min(h, y + mask.shape[0])
    if x1 <= x0 or y1 <= y0:
        return 0
    sub = mask[y0 - y:y1 - y, x0 - x:x1 - x]
    px[y0:y1, x0:x1][sub] = value
    return int(sub.size)


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
                rt.gc.alloc(self, px.nbytes)                       # the pixels (xalloc)
            rt.gc.alloc(self, IMAGE_OBJ_BYTES, xalloc=False)      # the image object (m_new_obj)

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
            """py_image_draw_string: x, y, text, then color, scale, x_spacing, y_spacing, mono_space (positional or
            keyword); proportional unless mono_space."""
            rt.checkpoint()
            if len(args) >= 2 and isinstance(args[0], (tuple, list)):
                (x, y), text, rest = tuple(int(v) for v in args[0]), args[1], args[2:]
            else:
                if len(args) < 3:
                    raise TypeError("draw_string: expected x, y, text")
                x, y, text, rest = int(args[0]), int(args[1]), args[2], args[3:]
            opts = [color, scale, x_spacing, y_spacing, mono_space]
            opts[:len(rest)] = rest[:5]
            color, scale, x_spacing, y_spacing, mono_space = opts
            if not scale > 0:
                raise OSError("Error: 0 < scale!")   # PY_ASSERT_TRUE_MSG raises OSError
            if not isinstance(text, str):
                raise TypeError("can't convert '%s' object to str implicitly" % type(text).__name__)
            cost(draw_text(self._px, x, y, text, self._color(color), float(scale), int(x_spacing), int(y_spacing),
                           bool(mono_space)))
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
            """py_image_cut: a new w x h image of the region (xalloc'd); no AI buffer."""
            rt.checkpoint()
            px = col.cut(self._px, int(x), int(y), int(w), int(h))
            cost(px.size)
            return Image(_px=px)

        def resize(self, w, h):
            """py_image_resize (positional only): a new image, nearest-neighbour shrink, bilinear enlarge."""
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
                # the firmware xallocs the AI buffer on the GC heap once, rows padded to 64 bytes
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
