"""Boxes that move with their image: the framing rule and training augmentation, and one clip-or-drop rule.

Every geometric change of a detection image (framing a photo to the model input, flips, zoom, shifts) maps its
boxes by the same affine map, then `clip` cuts them to the frame and drops those of which less than
MIN_VISIBLE of the area is left (so a box is never kept for an object that is mostly out of view, and never lost
while most of it shows). Boxes are datasets.Box in pixels, corners x0, y0 inclusive, x1, y1 exclusive.
"""
from dataclasses import dataclass, replace

import numpy as np

from host_tools import framing as F
from host_tools.pipeline.datasets import Box

MIN_VISIBLE = 0.4   # part of a box's area that must stay inside the frame for the box to be kept
MIN_SIDE = 2.0      # pixels: a thinner clipped box is dropped


@dataclass(frozen=True)
class Augment:
    """What training varies on each image, anew every epoch: the geometry here (boxes follow), the light with the
    classifier's camera model (camera_augment.light and its RGB565 bytes; the same field names and meaning)."""
    flip: bool = True                 # horizontal flips (a mirrored object is the same class)
    zoom: tuple = (0.75, 1.35)        # scale factor range, drawn log-uniform
    shift: float = 0.15               # largest shift, as a fraction of the frame's width / height
    mosaic: float = 0.0               # chance that a training frame is four crops of four frames, tiled
    brightness: float = 0.3           # +- relative
    contrast: float = 0.25
    saturation: float = 0.3
    white_balance: float = 0.1        # +- per-channel gain
    noise: float = 4.0                # max sensor noise sigma, in pixel levels
    rgb565: bool = True               # the board hands the KPU bytes made from RGB565 pixels

    def off(self):
        """No augmentation at all (evaluation, tests)."""
        return replace(self, flip=False, zoom=(1.0, 1.0), shift=0.0, mosaic=0.0, brightness=0.0, contrast=0.0,
                       saturation=0.0, white_balance=0.0, noise=0.0, rgb565=False)


def clip(boxes, w, h, min_visible=MIN_VISIBLE):
    """Boxes cut to the w x h frame; those with less than min_visible of their area inside, or thinner than
    MIN_SIDE pixels once cut, are dropped."""
    kept = []
    for b in boxes:
        area = (b.x1 - b.x0) * (b.y1 - b.y0)
        c = Box(max(b.x0, 0.0), max(b.y0, 0.0), min(b.x1, float(w)), min(b.y1, float(h)), b.cls)
        cw, ch = c.x1 - c.x0, c.y1 - c.y0
        if area > 0 and cw >= MIN_SIDE and ch >= MIN_SIDE and cw * ch >= min_visible * area:
            kept.append(c)
    return kept


def _map(boxes, sx, sy, tx, ty, flip_w=None):
    """x -> x * sx + tx, y -> y * sy + ty (then x -> flip_w - x when flip_w)."""
    out = []
    for b in boxes:
        x0, x1 = b.x0 * sx + tx, b.x1 * sx + tx
        if flip_w is not None:
            x0, x1 = flip_w - x1, flip_w - x0
        out.append(Box(x0, b.y0 * sy + ty, x1, b.y1 * sy + ty, b.cls))
    return out


def frame(rgb, boxes, w, h, framing=F.DEFAULT):
    """A photo and its boxes as the model sees them: framing.train_image, the boxes mapped and clipped alike."""
    return F.train_image(rgb, w, h, framing), frame_boxes(boxes, (rgb.shape[1], rgb.shape[0]), w, h, framing)


def frame_boxes(boxes, src_size, w, h, framing=F.DEFAULT):
    """The boxes of a src_size (w, h) photo in the w x h model input the framing rule makes of it."""
    x, y, cw, ch = F.crop_box(src_size[0], src_size[1], w, h, framing)
    sx, sy = w / cw, h / ch
    return clip(_map(boxes, sx, sy, -x * sx, -y * sy), w, h)


def fill_colour(image):
    """The colour augment fills an exposed border with: the frame's mean."""
    return tuple(int(v) for v in image.reshape(-1, 3).mean(0))


def augment(image, boxes, rng, aug: Augment, fill=None):
    """One random geometric variation of a uint8 (h, w, 3) frame and its boxes: zoom about the centre and shift
    (the exposed border filled with the frame's mean colour; `fill`, its fill_colour, spares measuring it again
    each epoch), then a flip."""
    from PIL import Image
    h, w = image.shape[:2]
    lo, hi = np.log(aug.zoom[0]), np.log(aug.zoom[1])
    s = float(np.exp(rng.uniform(lo, hi))) if hi > lo else float(aug.zoom[0])
    dx, dy = (float(rng.uniform(-aug.shift, aug.shift)) * side for side in (w, h))
    flip = aug.flip and rng.random() < 0.5
    out = image
    if s != 1.0 or dx or dy:
        # x' = s (x - w/2) + w/2 + dx; PIL wants the inverse map, output -> input
        fill = fill_colour(image) if fill is None else fill
        tx, ty = w / 2 * (1 - s) + dx, h / 2 * (1 - s) + dy
        im = Image.fromarray(image).transform((w, h), Image.AFFINE, (1 / s, 0, -tx / s, 0, 1 / s, -ty / s),
                                              Image.BILINEAR, fillcolor=fill)
        out = np.asarray(im)
        boxes = _map(boxes, s, s, tx, ty)
    if flip:
        out = out[:, ::-1]
        boxes = _map(boxes, 1, 1, 0, 0, flip_w=w)
    return np.ascontiguousarray(out), clip(boxes, w, h)


def light(frames, rng, aug: Augment):
    """The camera's light, colour and noise on a batch of uint8 frames (boxes stay), as the classifier's training
    draws them, then the RGB565 bytes the board's cut/resize path hands the KPU."""
    from host_tools.pipeline import camera_augment
    x = camera_augment.light(np.asarray(frames, np.float32), rng, aug)
    out = np.clip(np.rint(x, out=x), 0, 255, out=x).astype(np.uint8)
    return camera_augment.camera_bytes(out) if aug.rgb565 else out


def mosaic(parts, rng):
    """Four (frame, boxes) parts of one size tiled into one frame of that size: the frame is cut at a random
    point into four quarters and each quarter is a crop, at the same scale, from a random place of one part.
    Objects keep their size (unlike shrinking four frames into one) and the crops add scenes and edges."""
    h, w = parts[0][0].shape[:2]
    cx, cy = int(w * rng.uniform(0.3, 0.7)), int(h * rng.uniform(0.3, 0.7))
    out = np.empty_like(parts[0][0])
    boxes = []
    for (img, bs), (x0, y0, x1, y1) in zip(parts, ((0, 0, cx, cy), (cx, 0, w, cy), (0, cy, cx, h), (cx, cy, w, h))):
        qw, qh = x1 - x0, y1 - y0
        sx, sy = int(rng.integers(0, w - qw + 1)), int(rng.integers(0, h - qh + 1))
        out[y0:y1, x0:x1] = img[sy:sy + qh, sx:sx + qw]
        moved = _map(bs, 1, 1, x0 - sx, y0 - sy)
        # cut to the quarter (the clip rule on the quarter's own frame), then back in place
        boxes += _map(clip(_map(moved, 1, 1, -x0, -y0), qw, qh), 1, 1, x0, y0)
    return out, boxes
