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


def resize(px: np.ndarray, w: int, h: int) -> np.ndarray:
    """img.resize(w, h) on swapped RGB565 (H, W) uint16 or grayscale (H, W) uint8 pixels."""
    from PIL import Image
    if px.dtype == np.uint8:
        return np.ascontiguousarray(np.array(Image.fromarray(px).resize((w, h), Image.BILINEAR)))
    rgb = np.asarray(Image.fromarray(rgb565_to_888(px)).resize((w, h), Image.BILINEAR))
    return np.ascontiguousarray(rgb888_to_565(rgb))
