"""What the virtual camera sees: a list of pictures, each held in front of the lens for `hold_ms` of board time.

Sources are image files, folders of them, PIL images or numpy RGB arrays. The default scene shows photos shipped
with scikit-image and scikit-learn digits printed on a sheet (digit_sheet), which the demo classifier is trained on
through its framing, so it sees on the virtual board what it was trained on.
"""
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from host_tools.framing import CAMERA_H, CAMERA_W, DEFAULT, PHOTO_SUFFIXES, camera_view, crop_box, read_photo

IMAGE_SUFFIXES = tuple(sorted(PHOTO_SUFFIXES))


def _as_rgb(src, where) -> np.ndarray:
    if isinstance(src, np.ndarray):
        a = src
        if a.ndim == 2:
            a = np.stack([a] * 3, axis=-1)
        if a.ndim != 3 or a.shape[2] not in (3, 4) or a.dtype != np.uint8:
            raise ValueError("camera source %s: need a (H, W, 3) uint8 array, got %s %s" % (where, a.shape, a.dtype))
        return np.ascontiguousarray(a[..., :3])
    if isinstance(src, Image.Image):
        return np.asarray(src.convert("RGB"))
    raise TypeError("camera source %s: expected a path, PIL image or numpy array, got %s" % (where, type(src)))


def load_sources(items) -> list:
    """Expand files/folders/images into a list of (name, RGB array)."""
    out = []
    for i, item in enumerate(items):
        if isinstance(item, (str, Path)):
            p = Path(item)
            if p.is_dir():
                files = sorted(f for f in p.iterdir() if f.suffix.lower() in IMAGE_SUFFIXES)
                if not files:
                    raise ValueError("camera source %s: folder holds no images (%s)" % (p, ", ".join(IMAGE_SUFFIXES)))
                out += [(f.name, read_photo(f)) for f in files]      # upright, as train and kmodel run
            elif p.is_file():
                out.append((p.name, read_photo(p)))
            else:
                raise FileNotFoundError("camera source %s: no such file or folder" % p)
        elif isinstance(item, tuple) and len(item) == 2 and isinstance(item[0], str):
            out.append((item[0], _as_rgb(item[1], item[0])))
        else:
            out.append(("source%d" % i, _as_rgb(item, "#%d" % i)))
    return out


def photo(name: str) -> np.ndarray:
    """A photo shipped inside scikit-image (astronaut, coffee, chelsea, ...)."""
    from skimage import data
    return _as_rgb(getattr(data, name)(), name)


def digit_glyph(w: int, h: int, framing: str = DEFAULT) -> int:
    """How big the printed digit is on the default scene for a w x h classifier: 5/6 of the shorter side of the
    region of the frame it sees (host_tools/framing.py), a digit held up to fill the camera's view."""
    x, y, cw, ch = crop_box(CAMERA_W, CAMERA_H, w, h, framing)
    return min(cw, ch) * 5 // 6


def digit_sheet(img8x8, glyph: int = 64, size=(320, 240), rng=None) -> np.ndarray:
    """A digit (8x8, values 0..16 as scikit-learn ships them) printed on a sheet held before the camera: it fills
    a `glyph`-pixel square in the frame centre (where a centre-cropping classifier looks); the rest is the same
    paper. rng draws the print's pose, paper and light (host_tools/digits.py); the demo classifier trains on
    these sheets through its framing, so it sees in training what make sim shows it."""
    from host_tools.digits import render_digit
    tile = np.asarray(render_digit(img8x8, glyph, rng).convert("RGB")).astype(np.float32)
    edge = np.concatenate([tile[0], tile[-1], tile[:, 0], tile[:, -1]])
    paper = np.median(edge, axis=0)
    w, h = size
    frame = np.empty((h, w, 3), dtype=np.float32)
    frame[:] = paper
    # feather the tile's border into the paper so the sheet shows no seam around the digit
    ramp = np.minimum(1.0, np.minimum(np.arange(glyph), np.arange(glyph)[::-1]) / max(1.0, glyph / 8.0))
    alpha = np.minimum(ramp[:, None], ramp[None, :])[..., None]
    y0, x0 = (h - glyph) // 2, (w - glyph) // 2
    frame[y0:y0 + glyph, x0:x0 + glyph] = alpha * tile + (1 - alpha) * paper
    return np.clip(frame + 0.5, 0, 255).astype(np.uint8)


def digit_scene(index: int, glyph: int = 64, size=(320, 240), seed: int = 0) -> np.ndarray:
    """scikit-learn digit `index` printed on a sheet (digit_sheet), its print drawn from seed + index."""
    from sklearn.datasets import load_digits
    return digit_sheet(load_digits().images[index], glyph, size, np.random.default_rng(seed + index))


def default_sources(glyph: int = 64) -> list:
    """The make-sim scene: printed digits 0..3 (what the classifier, the first mode, looks at), then photos with a
    face, a cat and a cup (what the detector sees after the scripted mode switch)."""
    from sklearn.datasets import load_digits
    targets = load_digits().target
    picks = [int(np.flatnonzero(targets == k)[0]) for k in range(4)]
    out = [("digit%d" % targets[i], digit_scene(i, glyph)) for i in picks]
    out += [("astronaut", photo("astronaut")), ("chelsea", photo("chelsea")), ("coffee", photo("coffee")),
            ("astronaut", photo("astronaut"))]
    return out


@dataclass
class Camera:
    sources: list = field(default_factory=list)   # [(name, RGB array)]
    hold_ms: float = 1500.0
    _cache: dict = field(default_factory=dict, repr=False)

    def index_at(self, t_ms: float) -> int:
        if not self.sources:
            raise RuntimeError("the virtual camera has no pictures")
        return int(t_ms // self.hold_ms) % len(self.sources)

    def frame(self, t_ms: float, w: int, h: int) -> np.ndarray:
        """The picture in front of the lens at t, scaled to cover w x h and centre-cropped (read-only array)."""
        i = self.index_at(t_ms)
        key = (i, w, h)
        if key not in self._cache:
            if len(self._cache) > 64:
                self._cache.clear()
            a = camera_view(self.sources[i][1], w, h).copy()
            a.setflags(write=False)
            self._cache[key] = a
        return self._cache[key]
