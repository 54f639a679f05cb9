"""MaixPy's pixel formats and the firmware's pixel arithmetic.

RGB565 is stored byte-swapped (the LCD's order), as imlib.h and lcd.h define it. An int colour given to lcd/image
functions is such a swapped RGB565 value (lcd.RED == 0x00F8); a tuple is (r, g, b) bytes. Conversions use the
firmware's rounding tables (5/6-bit <-> 8-bit by rounding).
"""
import numpy as np

_R5_TO_8 = np.array([(v * 255 + 15) // 31 for v in range(32)], dtype=np.uint8)
_G6_TO_8 = np.array([(v * 255 + 31) // 63 for v in range(64)], dtype=np.uint8)
_8_TO_R5 = np.array([(v * 31 + 127) // 255 for v in range(256)], dtype=np.uint16)
_8_TO_G6 = np.array([(v * 63 + 127) // 255 for v in range(256)], dtype=np.uint16)


def pack(r5, g6, b5):
    """Swapped RGB565 from 5/6/5-bit fields (numpy arrays or ints)."""
    return (r5 << 3) | (g6 >> 3) | ((g6 & 0x7) << 13) | (b5 << 8)


def rgb888_to_565(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint16 swapped RGB565."""
    r = _8_TO_R5[rgb[..., 0]]
    g = _8_TO_G6[rgb[..., 1]]
    b = _8_TO_R5[rgb[..., 2]]
    return pack(r, g, b).astype(np.uint16)


def rgb565_to_888(px: np.ndarray) -> np.ndarray:
    """(H, W) uint16 swapped RGB565 -> (H, W, 3) uint8."""
    px = px.astype(np.uint16)
    r5 = (px >> 3) & 0x1F
    g6 = ((px & 0x07) << 3) | (px >> 13)
    b5 = (px >> 8) & 0x1F
    return np.stack([_R5_TO_8[r5], _G6_TO_8[g6], _R5_TO_8[b5]], axis=-1)


def to_565(color, default=0xFFFF) -> int:
    """A colour argument as the firmware takes it: None -> default, int -> as is, (r, g, b) -> packed."""
    if color is None:
        return default
    if isinstance(color, bool):
        raise TypeError("can't convert bool to int")
    if isinstance(color, int):
        return color & 0xFFFF
    try:
        r, g, b = color
    except (TypeError, ValueError):
        raise TypeError("color must be an int or an (r, g, b) tuple") from None
    r, g, b = (max(0, min(255, int(v))) for v in (r, g, b))
    return int(pack(int(_8_TO_R5[r]), int(_8_TO_G6[g]), int(_8_TO_R5[b])))


def to_rgb(color, default=(255, 255, 255)) -> tuple:
    """A colour argument as 8-bit (r, g, b), going through RGB565 like the firmware does."""
    if color is None:
        return default
    v = np.array([[to_565(color)]], dtype=np.uint16)
    return tuple(int(c) for c in rgb565_to_888(v)[0, 0])


def to_gray(color, default=255) -> int:
    """A colour argument for a grayscale image: int -> the byte, tuple -> luma."""
    if color is None:
        return default
    if isinstance(color, int) and not isinstance(color, bool):
        return max(0, min(255, color))
    r, g, b = color
    return int((r * 38 + g * 75 + b * 15) >> 7)


def luma(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 -> (H, W) uint8 grayscale, the firmware's integer luma."""
    rgb = rgb.astype(np.int32)
    return ((rgb[..., 0] * 38 + rgb[..., 1] * 75 + rgb[..., 2] * 15) >> 7).astype(np.uint8)


def sensor_frame(rgb: np.ndarray, gray: bool):
    """What sensor.snapshot() holds for a scene (H, W, 3) uint8: (pixels, AI planes). Pixels are swapped RGB565
    (or grayscale); the DVP writes the planar AI buffer from the same scene at 8 bits per channel (whether its
    planes keep more than the 5/6 bits of RGB565 is unknown: 8 bits assumed)."""
    if gray:
        px = luma(rgb)
        return px, px[None].copy()
    return rgb888_to_565(rgb), np.ascontiguousarray(rgb.transpose(2, 0, 1))


def ai_planes(px: np.ndarray) -> np.ndarray:
    """img.pix_to_ai(): the planar AI buffer (C, H, W) uint8 built from an image's own pixels."""
    if px.dtype == np.uint8:
        return px[None].copy()
    return np.ascontiguousarray(rgb565_to_888(px).transpose(2, 0, 1))


def cut(px: np.ndarray, x: int, y: int, w: int, h: int) -> np.ndarray:
    """img.cut(x, y, w, h) (py_image.c py_image_cut): a new w x h image (xalloc'd, so zeroed) holding the pixels of
    the region that lie inside the source; the rest stays 0."""
    if x < 0 or y < 0:
        # the C loops start at a negative index and read memory before the image
        raise ValueError("cut at (%d, %d): the firmware would read outside the image" % (x, y))
    out = np.zeros((h, w), dtype=px.dtype)
    sub = px[y:y + h, x:x + w]
    out[:sub.shape[0], :sub.shape[1]] = sub
    return out


def resize(px: np.ndarray, w: int, h: int) -> np.ndarray:
    """img.resize(w, h) as py_image.c py_image_resize computes it, on swapped RGB565 (H, W) uint16 or grayscale
    (H, W) uint8 pixels.

    RGB565: the same size is a copy; if the width does not grow or the height shrinks, nearest neighbour
    (source index = (int)(i * (float)src/dst) in single precision); otherwise bilinear on the 5/6/5-bit fields.
    Grayscale: if either side does not shrink, bilinear; otherwise the mean of a box of source pixels.
    The firmware is built with -ffast-math, so GCC may fuse the bilinear paths' multiply-adds; here each float32
    product is rounded on its own (the nearest-neighbour and box paths have no such freedom: they are exact).
    """
    h0, w0 = px.shape
    if px.dtype == np.uint8:
        if w >= w0 or h >= h0:
            return _gray_bilinear(px, w, h)
        return _gray_box(px, w, h)
    if (w0, h0) == (w, h):
        return px.copy()
    sx = np.float32(w0) / np.float32(w)
    sy = np.float32(h0) / np.float32(h)
    if w0 >= w or h0 > h:
        xs = (np.arange(w, dtype=np.float32) * sx).astype(np.int64)
        ys = (np.arange(h, dtype=np.float32) * sy).astype(np.int64)
        return np.ascontiguousarray(px[ys][:, xs])
    return _rgb565_bilinear(px, w, h, sx, sy)


def _trunc_u8(v: np.ndarray) -> np.ndarray:
    """(uint8_t) of a float: truncation toward zero; a negative value (only possible at the top/left edge, where a
    weight is negative) wraps, as GCC's conversion through a signed int does (not checked on a board)."""
    return (np.trunc(v).astype(np.int64) & 0xFF).astype(np.int64)


def _rgb565_bilinear(px, w, h, sx, sy):
    h0, w0 = px.shape
    half = np.float32(0.5)
    xsrc = (np.arange(w, dtype=np.float32) + half) * sx - half
    ysrc = (np.arange(h, dtype=np.float32) + half) * sy - half
    x1 = np.trunc(xsrc).astype(np.int64)            # (uint16_t) of a float in (-0.5, w0): 0 below 0
    y1 = np.trunc(ysrc).astype(np.int64)
    x2, y2 = x1 + 1, y1 + 1
    edge = (x2[None, :] >= w0) | (y2[:, None] >= h0)  # the last column/row: the pixel at (x1, y1) as it is
    x2c, y2c = np.minimum(x2, w0 - 1), np.minimum(y2, h0 - 1)
    ax1 = (x2.astype(np.float32) - xsrc)[None, :]       # weight of x1 (x2 - x_src)
    ax2 = (xsrc - x1.astype(np.float32))[None, :]
    ay1 = (y2.astype(np.float32) - ysrc)[:, None]
    ay2 = (ysrc - y1.astype(np.float32))[:, None]
    p11, p21 = px[y1][:, x1], px[y1][:, x2c]
    p12, p22 = px[y2c][:, x1], px[y2c][:, x2c]

    def field(f):
        t1 = ax1 * f(p11).astype(np.float32) + ax2 * f(p21).astype(np.float32)
        t2 = ax1 * f(p12).astype(np.float32) + ax2 * f(p22).astype(np.float32)
        return _trunc_u8(ay1 * t1 + ay2 * t2)

    r5 = field(lambda p: (p >> 3) & 0x1F)
    g6 = field(lambda p: ((p & 0x07) << 3) | (p >> 13))
    b5 = field(lambda p: (p >> 8) & 0x1F)
    # COLOR_R5_G6_B5_TO_RGB565 does not mask its inputs: an out-of-range field spills into its neighbours
    out = ((r5 << 3) | (g6 >> 3) | ((g6 & 0x7) << 13) | (b5 << 8)) & 0xFFFF
    out = np.where(edge, p11, out.astype(np.uint16))
    return np.ascontiguousarray(out.astype(np.uint16))


def _gray_bilinear(px, w, h):
    h0, w0 = px.shape
    sx = np.float32(w0) / np.float32(w)
    sy = np.float32(h0) / np.float32(h)
    # (y+0.5)*sy-0.5 is computed in double (0.5 is a double literal) and stored in a float
    yf = ((np.arange(h) + 0.5) * np.float64(sy) - 0.5).astype(np.float32)
    xf = ((np.arange(w) + 0.5) * np.float64(sx) - 0.5).astype(np.float32)
    y0 = np.trunc(yf).astype(np.int64)
    x0 = np.trunc(xf).astype(np.int64)
    y1, x1 = y0 + 1, x0 + 1
    vy1 = np.where(y0 < h0 - 1, y1, y0)
    vx1 = np.where(x0 < w0 - 1, x1, x0)
    wx0 = (x1.astype(np.float32) - xf)[None, :]
    wx1 = (xf - x0.astype(np.float32))[None, :]
    wy0 = (y1.astype(np.float32) - yf)[:, None]
    wy1 = (yf - y0.astype(np.float32))[:, None]
    f = px.astype(np.float32)
    acc = f[y0][:, x0] * wx0 * wy0
    acc = acc + f[y0][:, vx1] * wx1 * wy0
    acc = acc + f[vy1][:, x0] * wx0 * wy1
    acc = acc + f[vy1][:, vx1] * wx1 * wy1
    return np.ascontiguousarray(_trunc_u8(acc).astype(np.uint8))


def _gray_box(px, w, h):
    """The shrink: each output pixel is the integer mean of source rows y*sy..(y+1)*sy and columns x*sy..(x+1)*sy,
    both ends included. The C scales columns by sy, not sx (so a box is square however the aspect changes), and
    the last box reaches one row (and column) past the image: those reads are of memory after the image, which the
    simulator takes as 0."""
    h0, w0 = px.shape
    sy = np.float32(h0) / np.float32(h)
    edges = (np.arange(max(w, h) + 1, dtype=np.float32) * sy).astype(np.int64)   # (int)(i * sy)
    ya, yb, xa, xb = edges[:h], edges[1:h + 1], edges[:w], edges[1:w + 1]
    rows, cols = int(yb.max()) + 1, int(xb.max()) + 1
    flat = np.zeros((rows + 1) * w0 + cols, dtype=np.int64)   # the image, then the memory after it
    flat[:h0 * w0] = px.reshape(-1)
    ext = flat[np.arange(rows)[:, None] * w0 + np.arange(cols)[None, :]]   # in[yy * w0 + xx], xx may pass w0
    s = np.zeros((rows + 1, cols + 1), dtype=np.int64)
    s[1:, 1:] = ext.cumsum(0).cumsum(1)
    total = (s[yb + 1][:, xb + 1] - s[ya][:, xb + 1] - s[yb + 1][:, xa] + s[ya][:, xa])
    count = (yb - ya + 1)[:, None] * (xb - xa + 1)[None, :]
    return np.ascontiguousarray((total // count).astype(np.uint8))
