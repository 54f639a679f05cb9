"""scikit-learn's 8x8 digits drawn like a printed digit seen by the K210 camera.

One renderer serves both the demo classifier's training data and the simulator's camera, so the model is
trained on exactly what the virtual board shows it.
"""
import numpy as np
from PIL import Image, ImageFilter


def _size_pair(size):
    if isinstance(size, int):
        return size, size
    w, h = size
    return int(w), int(h)


def render_digit(img8x8, size, rng=None) -> Image.Image:
    """Draw one digit (8x8 array, values 0..16 as sklearn ships them) as an RGB PIL image of `size` (int or (w, h)).

    Dark ink on light paper, smoothly upscaled, with a small random pose, uneven lighting, colour tint, blur and
    sensor noise drawn from `rng` (a numpy Generator). rng=None draws the clean, centred digit. The same rng state
    gives the same image.
    """
    img = np.asarray(img8x8, dtype=np.float32).reshape(8, 8)
    if img.min() < 0 or img.max() > 16:
        raise ValueError("render_digit: img8x8 values must lie in 0..16 (sklearn digits), got %g..%g"
                         % (img.min(), img.max()))
    w, h = _size_pair(size)
    if w < 8 or h < 8:
        raise ValueError("render_digit: size must be at least 8x8, got %dx%d" % (w, h))
    r = rng if rng is not None else None

    def u(lo, hi, clean):
        return float(r.uniform(lo, hi)) if r is not None else clean

    # The glyph: ink in [0,1] upscaled with bicubic so strokes look printed, not pixelated.
    side = min(w, h)
    glyph_px = max(8, int(round(side * u(0.55, 0.9, 0.75))))
    ink = Image.fromarray((img / 16.0 * 255).astype(np.uint8), "L").resize((glyph_px, glyph_px), Image.BICUBIC)
    ink = ink.rotate(u(-12.0, 12.0, 0.0), resample=Image.BICUBIC, expand=False)
    canvas = Image.new("L", (w, h), 0)
    cx = (w - glyph_px) / 2 + u(-0.08, 0.08, 0.0) * w
    cy = (h - glyph_px) / 2 + u(-0.08, 0.08, 0.0) * h
    canvas.paste(ink, (int(round(cx)), int(round(cy))))
    blur = u(0.3, 1.2, 0.5) * side / 64.0
    if blur > 0.05:
        canvas = canvas.filter(ImageFilter.GaussianBlur(blur))
    a = np.asarray(canvas, dtype=np.float32) / 255.0  # ink coverage per pixel

    # Paper and ink colours with a slight tint; lighting falls off across the sheet.
    paper = np.array([u(180, 245, 230)] * 3, dtype=np.float32) + np.array([u(-12, 12, 0) for _ in range(3)],
                                                                          dtype=np.float32)
    ink_rgb = np.array([u(10, 80, 30)] * 3, dtype=np.float32) + np.array([u(-10, 10, 0) for _ in range(3)],
                                                                          dtype=np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    gx, gy = u(-0.25, 0.25, 0.0), u(-0.25, 0.25, 0.0)
    light = 1.0 + gx * (xx / w - 0.5) + gy * (yy / h - 0.5)
    rgb = (paper[None, None, :] * (1 - a[..., None]) + ink_rgb[None, None, :] * a[..., None]) * light[..., None]
    if r is not None:
        rgb = rgb + r.normal(0.0, r.uniform(1.0, 6.0), size=rgb.shape)
    return Image.fromarray(np.clip(np.rint(rgb), 0, 255).astype(np.uint8), "RGB")


def load_digits():
    """(images (N,8,8) float 0..16, labels (N,) int) from scikit-learn's bundled copy; no download."""
    from sklearn.datasets import load_digits as _load
    d = _load()
    return d.images.astype(np.float32), d.target.astype(np.int64)


def render_dataset(images, labels, size, seed):
    """All digits rendered at `size`, one deterministic rng per seed: (N,H,W,3) uint8 and labels."""
    rng = np.random.default_rng(seed)
    w, h = _size_pair(size)
    out = np.empty((len(images), h, w, 3), dtype=np.uint8)
    for i, im in enumerate(images):
        out[i] = np.asarray(render_digit(im, (w, h), rng))
    return out, np.asarray(labels)
