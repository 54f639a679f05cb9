"""Classifier augmentation: what pointing the board's camera at a thing does to the picture.

Each training image is kept as its framed region at a margin above the model input (`SOURCE_MARGIN`); every epoch
draws a new view of it: a crop of that region (aim and distance), a mirror image, light, colour cast, focus and
sensor noise, then the RGB565 rounding of the board's cut/resize path (host_tools.k210.pixels), so training sees
the bytes the KPU will get.
"""
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageFilter

from host_tools.k210 import pixels

SOURCE_MARGIN = 1.25     # training sources are kept at this multiple of the model input, for crops to resample


@dataclass(frozen=True)
class Augment:
    crop: tuple = (0.75, 1.0)        # side of the view as a fraction of the framed region
    aspect: float = 0.1             # +- jitter of the view's aspect
    flip: bool = True               # mirror images (off for things with a handedness: digits, text)
    brightness: float = 0.3         # +- relative
    contrast: float = 0.25
    saturation: float = 0.3
    white_balance: float = 0.1      # +- per-channel gain
    noise: float = 4.0              # max sensor noise sigma, in pixel levels
    blur: float = 0.2               # probability of a slightly out-of-focus view
    rgb565: bool = True             # the board's cut/resize path hands the KPU RGB565 pixels

    @staticmethod
    def none():
        return Augment(crop=(1.0, 1.0), aspect=0.0, flip=False, brightness=0.0, contrast=0.0, saturation=0.0,
                       white_balance=0.0, noise=0.0, blur=0.0, rgb565=True)


def source_size(w: int, h: int) -> tuple:
    return int(round(w * SOURCE_MARGIN)), int(round(h * SOURCE_MARGIN))


def crop(src: np.ndarray, w: int, h: int, rng, aug: Augment) -> np.ndarray:
    """A (h, w, 3) uint8 view of a framed source image (any size, same aspect as the model): aim, distance, focus."""
    sh, sw = src.shape[:2]
    side = rng.uniform(*aug.crop)
    stretch = np.exp(rng.uniform(-aug.aspect, aug.aspect))
    cw = min(sw, max(2, int(round(sw * side * stretch))))
    ch = min(sh, max(2, int(round(sh * side / stretch))))
    x0 = int(rng.integers(0, sw - cw + 1))
    y0 = int(rng.integers(0, sh - ch + 1))
    im = Image.fromarray(np.ascontiguousarray(src[y0:y0 + ch, x0:x0 + cw]))
    if aug.blur and rng.random() < aug.blur:
        im = im.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0) * max(cw / w, 1.0)))
    out = np.asarray(im.resize((w, h), Image.BILINEAR, reducing_gap=3.0))
    return out[:, ::-1] if aug.flip and rng.random() < 0.5 else out


def light(x: np.ndarray, rng, aug: Augment) -> np.ndarray:
    """Brightness, contrast, saturation, white balance and sensor noise on RGB images (n, h, w, 3), as float32.

    Per image: saturation about each pixel's grey, contrast about the image's mean, brightness and white-balance
    gains, then noise. The first four are affine, so they are applied as one: out = A x + B grey + C with per-image
    (A, B, C) per channel (saturation leaves the image's mean unchanged, so contrast's mean is the input's); the
    random draws are the same, in the same order, as applying them one by one."""
    n = len(x)

    def gain(r, channels=1):
        return 1.0 + rng.uniform(-r, r, size=(n, 1, 1, channels))

    x = np.asarray(x, np.float32)
    sat, con, bri, wb = gain(aug.saturation), gain(aug.contrast), gain(aug.brightness), gain(aug.white_balance, 3)
    mean = x.mean(axis=(1, 2, 3), keepdims=True, dtype=np.float64)
    k = con * bri * wb
    out = x * (k * sat).astype(np.float32)
    grey = (x[..., 0] + x[..., 1] + x[..., 2])[..., None] * np.float32(1 / 3)   # (numpy's sum over 3 is slower)
    out += grey * (k * (1.0 - sat)).astype(np.float32)
    out += (bri * wb * mean * (1.0 - con)).astype(np.float32)
    if aug.noise:
        noise = rng.normal(0.0, 1.0, size=x.shape)
        noise *= rng.uniform(0.0, aug.noise, size=(n, 1, 1, 1))
        out += noise
    return out


def camera_bytes(rgb: np.ndarray) -> np.ndarray:
    """RGB888 -> the RGB565 the firmware's cut/resize works in -> the 8-bit planes pix_to_ai makes of it."""
    rgb = np.asarray(rgb, np.uint8)
    out = np.empty_like(rgb)
    for c in range(3):      # each channel's byte depends on that channel's byte only: one table per channel
        np.take(_CAMERA_TABLE[c], rgb[..., c], out=out[..., c])
    return out


# pixels' own round trip on every byte value, as (3, 256) tables
_CAMERA_TABLE = np.ascontiguousarray(
    pixels.rgb565_to_888(pixels.rgb888_to_565(np.repeat(np.arange(256, dtype=np.uint8)[:, None], 3, 1)[None]))[0].T)


def batch(sources, idx, w, h, rng, aug: Augment) -> np.ndarray:
    """Augmented (n, h, w, 3) uint8 views of sources[idx]."""
    x = np.stack([crop(sources[i], w, h, rng, aug) for i in idx]).astype(np.float32)
    out = np.clip(np.rint(light(x, rng, aug)), 0, 255).astype(np.uint8)
    return camera_bytes(out) if aug.rgb565 else out
