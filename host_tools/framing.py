"""Input framing: the one rule for how a photo or a camera frame becomes a model's input.

The rule a model was trained with is written in its manifest (`framing`) and followed everywhere:
- "crop" (the default): take the largest centred region of the source that has the model input's aspect ratio,
  then resize it to the model input;
- "stretch": resize the whole source to the model input, ignoring the aspect ratio.

Training applies it to each photo (`train_image`). On the board the source is the camera's full QVGA frame: the
app cuts the region and resizes it with the firmware's own calls, then builds the KPU's AI buffer
(device/lib/camera.py mirrors `crop_box`; a test holds them equal). `camera_view` is how a photo fills that frame
on the virtual camera, so `model_input(camera_view(photo), ...)` is what the KPU receives when the camera looks at
the photo: the bytes `kmodel run` feeds the emulator for an image, and those the simulated app feeds the KPU.
"""
import numpy as np

from host_tools.k210 import pixels
from host_tools.k210.firmware import CAMERA_H, CAMERA_W   # the app always takes QVGA frames

FRAMINGS = ("crop", "stretch")
DEFAULT = "crop"
EXIF_ORIENTATION = 0x0112                   # the EXIF tag, 1-8 (1: stored upright)
QUARTER_TURNS = frozenset((5, 6, 7, 8))     # orientations whose upright photo swaps width and height
PHOTO_SUFFIXES = frozenset((".png", ".jpg", ".jpeg", ".bmp", ".gif", ".ppm", ".pgm", ".tif", ".tiff", ".webp"))


def check(framing: str, where: str = "framing") -> str:
    if framing not in FRAMINGS:
        raise ValueError("%s is %r, expected one of %s" % (where, framing, ", ".join(FRAMINGS)))
    return framing


def crop_box(src_w: int, src_h: int, w: int, h: int, framing: str = DEFAULT):
    """(x, y, cw, ch): the region of a src_w x src_h source that becomes a w x h model input."""
    check(framing)
    if framing == "stretch" or src_w * h == src_h * w:
        return 0, 0, src_w, src_h
    if src_w * h > src_h * w:          # source wider than the model: keep its full height
        cw, ch = src_h * w // h, src_h
    else:
        cw, ch = src_w, src_w * h // w
    return (src_w - cw) // 2, (src_h - ch) // 2, cw, ch


def train_image(rgb: np.ndarray, w: int, h: int, framing: str = DEFAULT) -> np.ndarray:
    """A photo (H, W, 3) uint8 framed for training: (h, w, 3) uint8, resized with a good filter."""
    from PIL import Image
    x, y, cw, ch = crop_box(rgb.shape[1], rgb.shape[0], w, h, framing)
    im = Image.fromarray(np.ascontiguousarray(rgb[y:y + ch, x:x + cw]))
    if (cw, ch) != (w, h):
        im = im.resize((w, h), Image.BILINEAR, reducing_gap=3.0)
    return np.asarray(im, dtype=np.uint8)


def camera_view(rgb: np.ndarray, w: int = CAMERA_W, h: int = CAMERA_H) -> np.ndarray:
    """How a picture held in front of the virtual camera fills its w x h frame: scaled to cover it, centred."""
    from PIL import Image
    sh, sw = rgb.shape[:2]
    if (sw, sh) == (w, h):
        return rgb
    s = max(w / sw, h / sh)
    nw, nh = max(w, int(round(sw * s))), max(h, int(round(sh * s)))
    im = Image.fromarray(np.ascontiguousarray(rgb)).resize((nw, nh), Image.BILINEAR)
    x0, y0 = (nw - w) // 2, (nh - h) // 2
    return np.asarray(im)[y0:y0 + h, x0:x0 + w].copy()


def model_input(frame_rgb: np.ndarray, w: int, h: int, c: int, framing: str = DEFAULT) -> np.ndarray:
    """The planar (c, h, w) uint8 bytes the KPU gets from a camera frame (H, W, 3) uint8, as the app takes them:
    the snapshot's own AI buffer when the region is the whole frame at the model's size, else cut, resize and
    pix_to_ai() on the frame's RGB565 (or grayscale) pixels."""
    px, ai = pixels.sensor_frame(frame_rgb, c == 1)
    fh, fw = px.shape
    x, y, cw, ch = crop_box(fw, fh, w, h, framing)
    if (x, y, cw, ch) == (0, 0, fw, fh) and (cw, ch) == (w, h):
        return ai
    region = pixels.cut(px, x, y, cw, ch)
    if (cw, ch) != (w, h):
        region = pixels.resize(region, w, h)
    return pixels.ai_planes(region)


def photo_region(src_w: int, src_h: int, w: int, h: int, framing: str = DEFAULT):
    """(x, y, cw, ch) in photo pixels (floats): the part of a src_w x src_h photo that a w x h model input shows
    when the board's camera looks at the photo (camera_view, then crop_box of the frame)."""
    if (src_w, src_h) == (CAMERA_W, CAMERA_H):
        nw, nh = CAMERA_W, CAMERA_H
    else:
        s = max(CAMERA_W / src_w, CAMERA_H / src_h)
        nw, nh = max(CAMERA_W, int(round(src_w * s))), max(CAMERA_H, int(round(src_h * s)))
    ox, oy = (nw - CAMERA_W) // 2, (nh - CAMERA_H) // 2
    x, y, cw, ch = crop_box(CAMERA_W, CAMERA_H, w, h, framing)
    kx, ky = src_w / nw, src_h / nh
    return (x + ox) * kx, (y + oy) * ky, cw * kx, ch * ky


def read_photo(path, draft=None) -> np.ndarray:
    """(H, W, 3) uint8 of an image file, upright as its EXIF orientation says (a phone's portrait photo is stored
    sideways; a viewer, and so the camera looking at it, shows it upright); ValueError naming the file when it is
    not an image. draft (w, h): a big JPEG may be decoded at a reduced scale that still covers it (much faster)."""
    from PIL import Image, ImageOps
    try:
        with Image.open(path) as im:
            if draft is not None:
                im.draft("RGB", tuple(draft)[::-1] if _turned(im) else tuple(draft))
            return np.asarray(ImageOps.exif_transpose(im).convert("RGB"), np.uint8)
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError("%s: cannot read image: %s" % (path, e)) from None


def _turned(im) -> bool:
    """The EXIF Orientation of an open image says a quarter turn (its width and height swap when upright)."""
    return im.getexif().get(EXIF_ORIENTATION, 1) in QUARTER_TURNS


def photo_header(path):
    """(w, h, EXIF orientation 1-8) of an image file as stored, from its header; ValueError naming the file."""
    from PIL import Image
    try:
        with Image.open(path) as im:
            orientation = im.getexif().get(EXIF_ORIENTATION, 1)
            return im.size[0], im.size[1], orientation if orientation in range(1, 9) else 1
    except (OSError, ValueError, Image.DecompressionBombError) as e:
        raise ValueError("%s: cannot read image: %s" % (path, e)) from None


def photo_size(path):
    """(w, h) of an image file as read_photo gives it (upright), from its header; ValueError naming the file."""
    w, h, orientation = photo_header(path)
    return (h, w) if orientation in QUARTER_TURNS else (w, h)


def upright_point(x, y, orientation, w, h):
    """Where a point of a stored w x h image lands once the image is shown upright (read_photo: PIL's
    exif_transpose, EXIF orientations 1-8)."""
    return {1: (x, y), 2: (w - x, y), 3: (w - x, h - y), 4: (x, h - y), 5: (y, x), 6: (h - y, x),
            7: (h - y, w - x), 8: (y, w - x)}[orientation]


def photo_input(rgb: np.ndarray, w: int, h: int, c: int, framing: str = DEFAULT) -> np.ndarray:
    """What the KPU receives when the board's camera looks at this photo."""
    return model_input(camera_view(rgb), w, h, c, framing)
