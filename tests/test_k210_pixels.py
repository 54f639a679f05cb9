"""k210/pixels.py's resize and cut against py_image.c's loops written out pixel by pixel in single precision (as the
firmware computes them), on random RGB565 and grayscale images, shrinking and enlarging."""
import numpy as np
import pytest

from host_tools.k210 import pixels

F = np.float32


def u8(v):
    """(uint8_t) of a float: truncation toward zero, wrapping through a signed int."""
    return int(np.trunc(v)) & 0xFF


def c_resize_rgb565(src, w, h):
    h0, w0 = src.shape
    out = np.zeros((h, w), np.uint16)
    sx, sy = F(w0) / F(w), F(h0) / F(h)
    for y in range(h):
        for x in range(w):
            if (w0, h0) == (w, h):
                out[y, x] = src[y, x]
            elif w0 >= w or h0 > h:
                out[y, x] = src[int(F(y) * sy), int(F(x) * sx)]
            else:
                xs = (F(x) + F(0.5)) * sx - F(0.5)
                ys = (F(y) + F(0.5)) * sy - F(0.5)
                x1, y1 = int(np.trunc(xs)), int(np.trunc(ys))
                x2, y2 = x1 + 1, y1 + 1
                if x2 >= w0 or y2 >= h0:
                    out[y, x] = src[y1, x1]
                    continue
                p = [int(v) for v in (src[y1, x1], src[y1, x2], src[y2, x1], src[y2, x2])]
                fields = []
                for get in (lambda q: (q >> 3) & 0x1F, lambda q: ((q & 7) << 3) | (q >> 13), lambda q: (q >> 8) & 0x1F):
                    t1 = (F(x2) - xs) * F(get(p[0])) + (xs - F(x1)) * F(get(p[1]))
                    t2 = (F(x2) - xs) * F(get(p[2])) + (xs - F(x1)) * F(get(p[3]))
                    fields.append(u8((F(y2) - ys) * t1 + (ys - F(y1)) * t2))
                r, g, b = fields
                out[y, x] = ((r << 3) | (g >> 3) | ((g & 7) << 13) | (b << 8)) & 0xFFFF
    return out


def c_resize_gray(src, w, h):
    h0, w0 = src.shape
    out = np.zeros((h, w), np.uint8)
    sx, sy = F(w0) / F(w), F(h0) / F(h)
    flat = list(src.reshape(-1)) + [0] * (2 * w0 + 2)       # what follows the image in memory: 0 here
    for y in range(h):
        for x in range(w):
            if w >= w0 or h >= h0:
                yf = F((y + 0.5) * float(sy) - 0.5)
                xf = F((x + 0.5) * float(sx) - 0.5)
                y0, x0 = int(np.trunc(yf)), int(np.trunc(xf))
                y1, x1 = y0 + 1, x0 + 1
                vy1 = y1 if y0 < h0 - 1 else y0
                vx1 = x1 if x0 < w0 - 1 else x0
                acc = F(src[y0, x0]) * (F(x1) - xf) * (F(y1) - yf)
                acc = acc + F(src[y0, vx1]) * (xf - F(x0)) * (F(y1) - yf)
                acc = acc + F(src[vy1, x0]) * (F(x1) - xf) * (yf - F(y0))
                acc = acc + F(src[vy1, vx1]) * (xf - F(x0)) * (yf - F(y0))
                out[y, x] = u8(acc)
            else:
                ya, yb = int(F(y) * sy), int(F(y + 1) * sy)
                xa, xb = int(F(x) * sy), int(F(x + 1) * sy)       # the C scales columns by sy too
                total = sum(int(flat[yy * w0 + xx]) for yy in range(ya, yb + 1) for xx in range(xa, xb + 1))
                out[y, x] = total // ((yb - ya + 1) * (xb - xa + 1))
    return out


CASES = [((240, 240), (224, 224)), ((240, 240), (64, 64)), ((320, 240), (160, 120)), ((240, 240), (28, 28)),
         ((64, 64), (100, 90)), ((30, 20), (47, 20)), ((40, 30), (41, 20)), ((33, 33), (33, 33)), ((50, 40), (50, 90))]


@pytest.mark.parametrize("src, dst", CASES, ids=lambda v: "%dx%d" % v)
def test_rgb565_resize_is_py_image_c(src, dst):
    rng = np.random.default_rng(src[0] * 7 + dst[0])
    img = rng.integers(0, 1 << 16, (src[1], src[0]), dtype=np.uint16)
    assert np.array_equal(pixels.resize(img, *dst), c_resize_rgb565(img, *dst))


@pytest.mark.parametrize("src, dst", CASES, ids=lambda v: "%dx%d" % v)
def test_grayscale_resize_is_py_image_c(src, dst):
    rng = np.random.default_rng(src[1] * 5 + dst[1])
    img = rng.integers(0, 256, (src[1], src[0]), dtype=np.uint8)
    assert np.array_equal(pixels.resize(img, *dst), c_resize_gray(img, *dst))


def test_rgb565_shrink_picks_source_pixels_and_enlarge_blends_them():
    img = np.zeros((8, 8), np.uint16)
    img[:, 4:] = pixels.to_565((255, 255, 255))
    small = pixels.resize(img, 4, 4)
    assert set(np.unique(small)) <= set(np.unique(img))       # nearest neighbour: no new colours
    big = pixels.resize(img, 16, 8)
    assert len(np.unique(big)) > 2                            # bilinear at the edge


def test_cut_copies_the_region_and_zero_fills_what_lies_outside():
    img = np.arange(12, dtype=np.uint8).reshape(3, 4)
    assert np.array_equal(pixels.cut(img, 1, 1, 2, 2), [[5, 6], [9, 10]])
    assert np.array_equal(pixels.cut(img, 3, 2, 2, 2), [[11, 0], [0, 0]])
    with pytest.raises(ValueError, match="outside the image"):
        pixels.cut(img, -1, 0, 2, 2)
