"""A user-like detection folder: photos of coins with their boxes, as a user would bring them (tests, bench).

Made only from what the installed packages ship, deterministically from a seed: the 24 coins of scikit-image's
`coins` photo, cut out (watershed on the Sobel map, the scikit-image tutorial's recipe), tinted like copper, brass
or silver, squashed a little as if seen at an angle, with a soft shadow, on crops of other photos (scikit-learn's
china and flower, matplotlib's grace_hopper, scikit-image's color and grey photos), with distractors (patches of
text, bricks, a clock face) left unlabelled. Photos come at several camera sizes (4:3 and 16:9) as JPEG, with
Pascal VOC XML (Annotations/ + JPEGImages/) or YOLO txt beside each image. Never the demo detector's data (faces)
nor its three negative test photos (chelsea, coffee, rocket).
"""
import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

LABEL = "coin"
SIZES = ((640, 480), (800, 600), (1024, 768), (960, 540))
METALS = ((184, 115, 65), (205, 170, 80), (170, 170, 175), (150, 95, 60))
SKIMAGE_BACKGROUNDS = ("astronaut", "motorcycle_left", "hubble_deep_field", "immunohistochemistry", "colorwheel",
                       "brick", "grass", "gravel", "moon", "camera", "text", "page")
DISTRACTORS = ("clock", "text", "brick", "logo")


def _rgb(a):
    a = np.asarray(a)
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.ndim == 2:
        a = np.stack([a] * 3, -1)
    return np.ascontiguousarray(a[..., :3]).astype(np.uint8)


def backgrounds():
    """The background photos (uint8 RGB), from scikit-learn, matplotlib and scikit-image."""
    import matplotlib.cbook
    import skimage.data
    from sklearn.datasets import load_sample_images
    photos = list(load_sample_images().images)
    with matplotlib.cbook.get_sample_data("grace_hopper.jpg") as f:
        photos.append(np.asarray(Image.open(f).convert("RGB")))
    for name in SKIMAGE_BACKGROUNDS:
        if name == "motorcycle_left":
            photos.append(_rgb(skimage.data.stereo_motorcycle()[0]))
        else:
            photos.append(_rgb(getattr(skimage.data, name)()))
    return photos


def coins():
    """The coins of scikit-image's coins photo: [(grey float32 patch, float32 mask in 0..1)], 24 of them."""
    import skimage.data
    from scipy import ndimage as ndi
    from skimage import filters, segmentation
    img = skimage.data.coins()
    markers = np.zeros_like(img)
    markers[img < 30], markers[img > 150] = 1, 2
    solid = ndi.binary_fill_holes(segmentation.watershed(filters.sobel(img), markers) - 1)
    labels, n = ndi.label(solid)
    out = []
    for k, sl in enumerate(ndi.find_objects(labels), start=1):
        mask = labels[sl] == k
        if mask.sum() < 500:            # specks between the coins
            continue
        ys, xs = sl
        pad = (slice(max(ys.start - 2, 0), ys.stop + 2), slice(max(xs.start - 2, 0), xs.stop + 2))
        m = np.pad(mask, ((ys.start - pad[0].start, pad[0].stop - ys.stop),
                          (xs.start - pad[1].start, pad[1].stop - xs.stop)))
        m = ndi.binary_opening(m, iterations=1)
        out.append((img[pad].astype(np.float32), m.astype(np.float32)))
    return out


class Photographer:
    """Takes the photos: background crop, 1..4 coins, distractors, light, noise, blur, JPEG."""

    def __init__(self):
        import skimage.data
        self.backgrounds = backgrounds()
        self.coins = coins()
        self.distractors = [_rgb(getattr(skimage.data, n)()) for n in DISTRACTORS]

    def _background(self, rng, w, h):
        src = self.backgrounds[rng.integers(len(self.backgrounds))]
        H, W = src.shape[:2]
        cover = max(w / W, h / H)
        scale = cover * rng.uniform(1.0, 2.0)
        cw, ch = min(W, int(np.ceil(w / scale))), min(H, int(np.ceil(h / scale)))
        x0, y0 = rng.integers(0, W - cw + 1), rng.integers(0, H - ch + 1)
        a = np.asarray(Image.fromarray(src[y0:y0 + ch, x0:x0 + cw]).resize((w, h), Image.BILINEAR), np.float32)
        if rng.random() < 0.5:
            a = a[:, ::-1]
        return (a - 128) * rng.uniform(0.6, 1.1) + 128 + rng.uniform(-25, 25)

    def _coin(self, rng, d):
        """(rgb, alpha) of one coin about d pixels across, tinted and squashed, and its tight box in the patch."""
        grey, mask = self.coins[rng.integers(len(self.coins))]
        angle = rng.uniform(0, 360)
        sx, sy = (d, d * rng.uniform(0.75, 1.0)) if rng.random() < 0.5 else (d * rng.uniform(0.75, 1.0), d)
        size = (max(4, int(round(sx))), max(4, int(round(sy))))

        def warp(a, resample):
            im = Image.fromarray(a.astype(np.float32), "F").rotate(angle, resample, expand=True)
            return np.asarray(im.resize(size, resample), np.float32)
        g, m = warp(grey, Image.BILINEAR), np.clip(warp(mask, Image.BILINEAR), 0, 1)
        metal = np.array(METALS[rng.integers(len(METALS))], np.float32) * rng.uniform(0.85, 1.15, size=3)
        shade = (g - g.mean()) / max(g.std(), 1.0)
        rgb = metal[None, None] * (1 + 0.3 * shade[..., None]) * rng.uniform(0.6, 1.0)
        ys, xs = np.nonzero(m > 0.5)
        return rgb, m, (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)

    def _distractor(self, img, rng, w, h):
        src = self.distractors[rng.integers(len(self.distractors))]
        s = int(h * rng.uniform(0.1, 0.35))
        H, W = src.shape[:2]
        c = min(H, W, int(s * rng.uniform(1.0, 3.0)))
        y0, x0 = rng.integers(0, H - c + 1), rng.integers(0, W - c + 1)
        p = np.asarray(Image.fromarray(src[y0:y0 + c, x0:x0 + c]).resize((s, s), Image.BILINEAR), np.float32)
        x, y = rng.integers(0, w - s + 1), rng.integers(0, h - s + 1)
        img[y:y + s, x:x + s] = p * rng.uniform(0.6, 1.1)

    def photo(self, rng):
        """(JPEG bytes, (w, h), [(x0, y0, x1, y1)] boxes in pixels) of one photo."""
        w, h = SIZES[rng.integers(len(SIZES))]
        img = self._background(rng, w, h)
        for _ in range(rng.integers(0, 3)):
            self._distractor(img, rng, w, h)
        boxes = []
        for _ in range(rng.integers(1, 5)):
            d = h * rng.uniform(0.1, 0.35)
            rgb, m, (bx0, by0, bx1, by1) = self._coin(rng, d)
            ph, pw = m.shape
            for _try in range(20):
                x, y = int(rng.integers(-bx0, w - bx1 + 1)), int(rng.integers(-by0, h - by1 + 1))
                box = (x + bx0, y + by0, x + bx1, y + by1)
                if all(_overlap(box, o) < 0.1 for o in boxes):
                    break
            else:
                continue
            # a soft shadow down and to the right, then the coin; the patch is clipped to the photo
            off = max(1, int(d * 0.06))
            shadow = np.asarray(Image.fromarray((m * 255).astype(np.uint8)).filter(
                ImageFilter.GaussianBlur(max(1.0, d * 0.05))), np.float32) / 255 * rng.uniform(0.3, 0.6)
            _blend(img, np.zeros_like(rgb), shadow, x + off, y + off)
            _blend(img, rgb, m, x, y)
            boxes.append(box)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        light = 1 + rng.uniform(-0.25, 0.25) * (xx / w - 0.5) + rng.uniform(-0.25, 0.25) * (yy / h - 0.5)
        img = img * light[..., None] * rng.uniform(0.9, 1.1, size=3) + rng.normal(0, rng.uniform(1, 6), img.shape)
        out = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
        if rng.random() < 0.3:
            out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.4, 1.5)))
        buf = io.BytesIO()
        out.save(buf, format="JPEG", quality=int(rng.integers(80, 96)))
        return buf.getvalue(), (w, h), boxes


def _blend(img, rgb, alpha, x, y):
    """Alpha-blend a patch at (x, y) into img, clipped to img's edges."""
    H, W = img.shape[:2]
    ph, pw = alpha.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + pw, W), min(y + ph, H)
    if x0 >= x1 or y0 >= y1:
        return
    a = alpha[y0 - y:y1 - y, x0 - x:x1 - x, None]
    img[y0:y1, x0:x1] = img[y0:y1, x0:x1] * (1 - a) + rgb[y0 - y:y1 - y, x0 - x:x1 - x] * a


def _overlap(a, b):
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    return 0.0 if iw <= 0 or ih <= 0 else iw * ih / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def voc_xml(filename, size, boxes, label=LABEL):
    """Pascal VOC annotation text (1-based inclusive pixel corners, as labelImg writes them)."""
    w, h = size
    objs = "".join(
        "  <object>\n    <name>%s</name>\n    <pose>Unspecified</pose>\n    <truncated>0</truncated>\n"
        "    <difficult>0</difficult>\n    <bndbox>\n      <xmin>%d</xmin>\n      <ymin>%d</ymin>\n"
        "      <xmax>%d</xmax>\n      <ymax>%d</ymax>\n    </bndbox>\n  </object>\n"
        % (label, x0 + 1, y0 + 1, x1, y1) for x0, y0, x1, y1 in boxes)
    return ("<annotation>\n  <folder>JPEGImages</folder>\n  <filename>%s</filename>\n  <size>\n    <width>%d</width>\n"
            "    <height>%d</height>\n    <depth>3</depth>\n  </size>\n%s</annotation>\n" % (filename, w, h, objs))


def yolo_txt(size, boxes, cls=0):
    """YOLO txt lines: class cx cy w h, normalised to the image size."""
    w, h = size
    return "".join("%d %.6f %.6f %.6f %.6f\n" % (cls, (x0 + x1) / 2 / w, (y0 + y1) / 2 / h, (x1 - x0) / w,
                                                  (y1 - y0) / h) for x0, y0, x1, y1 in boxes)


def write_folder(root, count=150, seed=7, fmt="voc"):
    """Write `count` photos to root: fmt "voc" -> JPEGImages/ + Annotations/; "yolo" -> images with .txt beside
    and classes.txt (labelImg's layout). Returns the number of boxes written."""
    if fmt not in ("voc", "yolo"):
        raise ValueError("fmt must be 'voc' or 'yolo', got %r" % fmt)
    root = Path(root)
    img_dir = root / "JPEGImages" if fmt == "voc" else root
    img_dir.mkdir(parents=True, exist_ok=True)
    if fmt == "voc":
        (root / "Annotations").mkdir(exist_ok=True)
    else:
        (root / "classes.txt").write_text(LABEL + "\n")
    cam = Photographer()
    rng = np.random.default_rng(seed)
    total = 0
    for i in range(count):
        jpg, size, boxes = cam.photo(rng)
        name = "coins_%04d" % i
        (img_dir / (name + ".jpg")).write_bytes(jpg)
        if fmt == "voc":
            (root / "Annotations" / (name + ".xml")).write_text(voc_xml(name + ".jpg", size, boxes))
        else:
            (root / (name + ".txt")).write_text(yolo_txt(size, boxes))
        total += len(boxes)
    return total
