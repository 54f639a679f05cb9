"""The shipped face detector's data: scikit-image's lfw_subset faces composited onto its photo backgrounds.

Everything comes from the installed scikit-image and scikit-learn, deterministically from a seed. The astronaut
photo is held out (it is the real-photo test) and so is the cameraman ("camera"), whose face would be an
unlabelled positive. chelsea (the cat), coffee and rocket are the photos the detector must find no face in: they
are never used here either. Faces 0..79 and non-face patches 100..179 of lfw_subset are for training, the rest
for held-out composites. Some composites hold no face at all, and every composite may hold unlabelled look-alikes:
lfw's non-face patches and feathered ellipses of photo texture, some with eye-like spots, so a blob with dark
spots is not a face.
"""
import numpy as np
from PIL import Image, ImageFilter

from host_tools.pipeline.datasets import Box

BACKGROUNDS = ("coins", "moon", "page", "text", "immunohistochemistry", "hubble_deep_field", "brick", "grass",
               "gravel", "colorwheel", "retina", "logo", "clock", "cell", "motorcycle_left", "motorcycle_right",
               "sklearn:china", "sklearn:flower")
HELD_OUT_PHOTOS = ("astronaut", "camera")
NEGATIVE_TEST_PHOTOS = ("chelsea", "coffee", "rocket")   # the demo must box nothing in them: never trained on
EMPTY = 0.15          # part of the composites with no face at all
TRAIN_FACES, TEST_FACES = range(0, 80), range(80, 100)
TRAIN_NONFACES, TEST_NONFACES = range(100, 180), range(180, 200)
FRAME = (320, 240)  # (w, h): what the device feeds the detector
HAIR = ((30, 24, 20), (70, 45, 30), (120, 85, 50), (175, 140, 90), (140, 135, 130), (60, 60, 62))

# The face in skimage.data.astronaut() shown as the device sees it (see astronaut_frame): x0, y0, x1, y1 pixels,
# annotated by hand in the style of the lfw crops (square; eyes at 1/3 of the height, mouth at 0.7, chin at
# the bottom; measured on the photo: eyes y 64, mouth y 91, chin y 105, cheeks x 111..165).
ASTRONAUT_FACE = Box(103, 41, 175, 112)


def _photo(name):
    """A background photo for composites (uint8 RGB); the test photos are refused."""
    if name in NEGATIVE_TEST_PHOTOS or name in HELD_OUT_PHOTOS:
        raise ValueError("%s is a test photo of the face detector: it must not be used to make training data" % name)
    return test_photo(name)


def test_photo(name):
    """A photo by name (scikit-image's, "sklearn:china", "motorcycle_left"...) as uint8 RGB."""
    import skimage.data
    if name.startswith("sklearn:"):
        from sklearn.datasets import load_sample_image
        return np.asarray(load_sample_image(name.split(":")[1] + ".jpg"))
    if name.startswith("motorcycle_"):
        return np.asarray(skimage.data.stereo_motorcycle()[0 if name.endswith("left") else 1])
    a = np.asarray(getattr(skimage.data, name)())
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    if a.ndim == 2:
        a = np.stack([a] * 3, axis=-1)
    return np.ascontiguousarray(a[..., :3]).astype(np.uint8)


def astronaut_frame():
    """The astronaut photo as a 320x240 camera frame: its top 4:3 part (512x384) scaled to QVGA."""
    a = test_photo("astronaut")[:384]
    return np.asarray(Image.fromarray(a).resize(FRAME, Image.BILINEAR))


class Composer:
    """Draws composites: a random crop of a background photo with 1..max_faces lfw faces pasted on it."""

    def __init__(self, faces, nonfaces, size=FRAME, face_px=(28, 110), max_faces=3):
        import skimage.data
        lfw = skimage.data.lfw_subset()
        self.faces = [lfw[i] for i in faces]
        self.nonfaces = [lfw[i] for i in nonfaces]
        self.backgrounds = [_photo(n) for n in BACKGROUNDS]
        self.size, self.face_px, self.max_faces = size, face_px, max_faces

    def background(self, rng):
        src = self.backgrounds[rng.integers(len(self.backgrounds))]
        w, h = self.size
        H, W = src.shape[:2]
        scale = rng.uniform(max(w / W, h / H), max(1.0, max(w / W, h / H) * 2.5))
        cw, ch = min(W, int(w / scale)), min(H, int(h / scale))
        x0, y0 = rng.integers(0, W - cw + 1), rng.integers(0, H - ch + 1)
        img = Image.fromarray(src[y0:y0 + ch, x0:x0 + cw]).resize((w, h), Image.BILINEAR)
        a = np.asarray(img, dtype=np.float32)
        if rng.random() < 0.5:
            a = a[:, ::-1]
        a = (a - 128) * rng.uniform(0.6, 1.2) + 128 + rng.uniform(-30, 30)
        return a * rng.uniform(0.85, 1.15, size=3)

    def _patch(self, gray, w, h, rng, colour):
        """One lfw patch scaled to w x h, tinted, with a feathered elliptical mask (no square edge to cheat on)."""
        g = np.asarray(Image.fromarray((gray * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC), np.float32)
        g = (g - g.mean()) * rng.uniform(0.8, 1.3) + g.mean() + rng.uniform(-25, 25)
        tint = (np.array([1.0, 0.80, 0.66]) * rng.uniform(0.85, 1.15, size=3)) if colour else np.ones(3)
        rgb = g[..., None] * tint[None, None, :] * rng.uniform(0.9, 1.2)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r = ((xx + 0.5 - w / 2) / (w / 2)) ** 2 + ((yy + 0.5 - h / 2) / (h / 2)) ** 2
        edge = rng.uniform(1.05, 1.5)
        mask = np.clip((edge - r) / (edge - 0.7), 0, 1)
        mask = np.asarray(Image.fromarray((mask * 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(max(0.5, w / 30))), np.float32) / 255.0
        return rgb, mask

    def _head(self, img, b: Box, rng):
        """Hair around and above the face and sometimes shoulders below, so the face sits in a head as in a photo
        (the lfw crops carry no context; without it the detector boxes whole blobs, hair included)."""
        H, W = img.shape[:2]
        fw, fh = b.x1 - b.x0, b.y1 - b.y0
        cx, cy = (b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
        hair = np.array(HAIR[rng.integers(len(HAIR))], np.float32) * rng.uniform(0.7, 1.3)
        rx, ry = fw * rng.uniform(0.6, 0.8), fh * rng.uniform(0.7, 0.9)
        hy = cy - fh * rng.uniform(0.1, 0.25)
        d = ((xx - cx) / rx) ** 2 + ((yy - hy) / ry) ** 2
        m = np.clip((1.1 - d) / 0.2, 0, 1)[..., None]
        tex = rng.normal(0, 12, size=(H, W, 1)).astype(np.float32)
        img[:] = img * (1 - m) + (hair + tex) * m
        if rng.random() < 0.6:
            cloth = rng.uniform(20, 235, size=3).astype(np.float32)
            sy, sx = b.y1 + fh * 0.15, fw * rng.uniform(1.0, 1.4)
            d = ((xx - cx) / sx) ** 2 + ((yy - (sy + fh * 0.7)) / (fh * 0.75)) ** 2
            m = (np.clip((1.05 - d) / 0.1, 0, 1) * (yy > sy))[..., None]
            img[:] = img * (1 - m) + cloth * m

    def _texture_blob(self, img, x, y, s, rng):
        """An unlabelled look-alike at (x, y), s pixels across: a feathered ellipse of another photo's texture,
        often with dark spots: two where eyes would be, or one large one in a coloured ring like an eye seen close,
        so a blob with spots is not enough to make a face."""
        src = self.backgrounds[rng.integers(len(self.backgrounds))]
        c = min(src.shape[0], src.shape[1], int(s * rng.uniform(1.0, 3.0)))
        y0, x0 = rng.integers(0, src.shape[0] - c + 1), rng.integers(0, src.shape[1] - c + 1)
        g = np.asarray(Image.fromarray(src[y0:y0 + c, x0:x0 + c]).convert("L"), np.float32) / 255
        rgb, m = self._patch(g, s, s, rng, rng.random() < 0.5)
        yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)

        def disc(cx, cy, r, colour):
            d = np.clip(1.5 - np.hypot(xx - cx, yy - cy) / r, 0, 1)[..., None]
            return rgb * (1 - d) + colour * d
        spots = rng.choice(3, p=(0.3, 0.35, 0.35))
        if spots == 2:
            ey, dx, r = s * rng.uniform(0.3, 0.5), s * rng.uniform(0.15, 0.25), s * rng.uniform(0.05, 0.12)
            for ex in (s / 2 - dx, s / 2 + dx):
                rgb = disc(ex, ey, r, rng.uniform(0, 50))
        elif spots == 1:
            cx, cy, r = s * rng.uniform(0.35, 0.65), s * rng.uniform(0.35, 0.65), s * rng.uniform(0.1, 0.25)
            rgb = disc(cx, cy, r * rng.uniform(1.5, 2.2), rng.uniform(40, 220, size=3))   # iris
            rgb = disc(cx, cy, r, rng.uniform(0, 40))                                       # pupil
        img[y:y + s, x:x + s] = img[y:y + s, x:x + s] * (1 - m[..., None]) + rgb * m[..., None]

    def compose(self, rng):
        """(uint8 HWC image, [Box]) for one composite."""
        img = self.background(rng)
        H, W = img.shape[:2]
        boxes = []
        n_faces = 0 if rng.random() < EMPTY else rng.integers(1, self.max_faces + 1)
        for _ in range(n_faces):
            for _try in range(10):
                fh = int(rng.uniform(*self.face_px))
                fw = int(fh * rng.uniform(0.85, 1.05))
                x0, y0 = int(rng.integers(0, W - fw + 1)), int(rng.integers(0, H - fh + 1))
                b = Box(x0, y0, x0 + fw, y0 + fh)
                if all(_iou(_grow(b, 0.6), _grow(o, 0.6)) == 0 for o in boxes):
                    break
            else:
                continue
            if rng.random() < 0.8:   # real faces come with a head; some bare ones keep the box honest
                self._head(img, b, rng)
            face = self.faces[rng.integers(len(self.faces))]
            if rng.random() < 0.5:
                face = face[:, ::-1]
            rgb, m = self._patch(face, fw, fh, rng, rng.random() < 0.8)
            img[y0:y0 + fh, x0:x0 + fw] = img[y0:y0 + fh, x0:x0 + fw] * (1 - m[..., None]) + rgb * m[..., None]
            boxes.append(b)
        for _ in range(rng.integers(0, 3)):  # non-face lfw patches: hard negatives, not labelled
            s = int(rng.uniform(*self.face_px))
            x0, y0 = int(rng.integers(0, W - s + 1)), int(rng.integers(0, H - s + 1))
            if any(_iou(Box(x0, y0, x0 + s, y0 + s), o) > 0 for o in boxes):
                continue
            rgb, m = self._patch(self.nonfaces[rng.integers(len(self.nonfaces))], s, s, rng, rng.random() < 0.5)
            img[y0:y0 + s, x0:x0 + s] = img[y0:y0 + s, x0:x0 + s] * (1 - m[..., None]) + rgb * m[..., None]
        for _ in range(rng.integers(0, 4)):  # texture look-alikes, not labelled, placed clear of the faces
            s = int(rng.uniform(*self.face_px))
            x0, y0 = int(rng.integers(0, W - s + 1)), int(rng.integers(0, H - s + 1))
            if all(_iou(_grow(Box(x0, y0, x0 + s, y0 + s), 0.3), o) == 0 for o in boxes):
                self._texture_blob(img, x0, y0, s, rng)
        img = img + rng.normal(0, rng.uniform(1, 5), size=img.shape)
        out = Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8))
        if rng.random() < 0.3:
            out = out.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0)))
        return np.asarray(out), boxes


def _grow(b: Box, f: float) -> Box:
    dx, dy = (b.x1 - b.x0) * f / 2, (b.y1 - b.y0) * f / 2
    return Box(b.x0 - dx, b.y0 - dy, b.x1 + dx, b.y1 + dy)


def _iou(a: Box, b: Box) -> float:
    iw = min(a.x1, b.x1) - max(a.x0, b.x0)
    ih = min(a.y1, b.y1) - max(a.y0, b.y0)
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    return inter / ((a.x1 - a.x0) * (a.y1 - a.y0) + (b.x1 - b.x0) * (b.y1 - b.y0) - inter)


def composites(count, seed, held_out=False, size=FRAME):
    """`count` composites from `seed`: (N,H,W,3) uint8 and a list of box lists. held_out uses the test faces."""
    comp = Composer(TEST_FACES if held_out else TRAIN_FACES, TEST_NONFACES if held_out else TRAIN_NONFACES, size)
    rng = np.random.default_rng(seed)
    images, boxes = [], []
    for _ in range(count):
        im, bx = comp.compose(rng)
        images.append(im)
        boxes.append(bx)
    return np.stack(images), boxes
