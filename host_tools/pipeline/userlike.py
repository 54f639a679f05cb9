"""Small folders of JPEG "photos" like a user's, made from what installed packages ship (tests and bench/).

Never the demo generators' data: these stand in for a user's own pictures, taken at odd sizes and aspects, from
varied viewpoints and light, saved as JPEG by a phone.
- `faces`: scikit-image's lfw_subset, 25x25 grayscale crops, faces vs non-faces (a real-world set), enlarged to
  photo sizes with a colour cast, as a phone would store them.
- `objects`: scikit-image photos (the cat, the coffee cup, the rocket, ...), each seen again and again from a
  different viewpoint (a perspective quad inside the photo), distance, rotation and light.
- `shuffled`: a copy of a class folder with its labels drawn at random (a model cannot learn it).
"""
import shutil
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

OBJECTS = ("chelsea", "coffee", "rocket", "astronaut")


def _save_jpeg(img: Image.Image, path: Path, rng):
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path, "JPEG", quality=int(rng.integers(75, 96)))


def _photo_size(rng, short=(96, 200)):
    s = int(rng.integers(*short))
    aspect = float(rng.choice([1.0, 4 / 3, 3 / 4, 16 / 9]))
    return (int(round(s * aspect)), s) if aspect >= 1 else (s, int(round(s / aspect)))


def _light(img: Image.Image, rng) -> Image.Image:
    img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.65, 1.35))
    img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.7, 1.3))
    img = ImageEnhance.Color(img).enhance(rng.uniform(0.6, 1.4))
    gains = rng.uniform(0.85, 1.15, size=3)
    a = np.asarray(img, np.float32) * gains + rng.normal(0, rng.uniform(0, 5), size=(img.height, img.width, 3))
    img = Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8))
    if rng.random() < 0.3:
        img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.5)))
    return img


def faces(root, per_class=70, seed=0) -> Path:
    """root/face and root/not_face, `per_class` JPEGs each (at most 100) from scikit-image's lfw_subset."""
    from skimage import data
    if not 1 <= per_class <= 100:
        raise ValueError("faces: per_class must be 1..100 (lfw_subset has 100 of each), got %r" % per_class)
    root = Path(root)
    rng = np.random.default_rng(seed)
    crops = data.lfw_subset()                     # (200, 25, 25) float in [0, 1]: 100 faces, then 100 non-faces
    for cls, part in (("face", crops[:100]), ("not_face", crops[100:])):
        for i, c in enumerate(part[:per_class]):
            gray = Image.fromarray(np.clip(np.rint(c * 255), 0, 255).astype(np.uint8), "L")
            s = int(rng.integers(96, 200))
            w, h = (s, s) if rng.random() < 0.5 else ((s * 5 // 4, s) if rng.random() < 0.5 else (s, s * 5 // 4))
            img = gray.resize((w, h), Image.BICUBIC)     # a phone's crop, mildly off square
            _save_jpeg(_light(img.convert("RGB"), rng), root / cls / ("%s_%03d.jpg" % (cls, i)), rng)
    return root


def _view(photo: Image.Image, rng) -> Image.Image:
    """One view of a photo: a random quadrilateral inside it (viewpoint, distance, rotation) mapped to a photo."""
    W, H = photo.size
    w, h = _photo_size(rng, (120, 240))
    scale = rng.uniform(0.45, 0.95)                       # how much of the scene the view holds
    vw = min(W, scale * W)
    vh = min(H, vw * h / w)
    if vh > H:
        vh, vw = H, H * w / h
    cx = rng.uniform(vw / 2, W - vw / 2)
    cy = rng.uniform(vh / 2, H - vh / 2)
    ang = np.deg2rad(rng.uniform(-15, 15))
    corners = np.array([[-vw / 2, -vh / 2], [-vw / 2, vh / 2], [vw / 2, vh / 2], [vw / 2, -vh / 2]])
    corners += rng.uniform(-0.08, 0.08, size=(4, 2)) * [vw, vh]       # perspective
    rot = np.array([[np.cos(ang), -np.sin(ang)], [np.sin(ang), np.cos(ang)]])
    quad = corners @ rot.T + [cx, cy]
    quad = np.clip(quad, 0, [W - 1, H - 1])
    img = photo.transform((w, h), Image.QUAD, tuple(quad.reshape(-1)), Image.BICUBIC)
    if rng.random() < 0.5:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return _light(img, rng)


def objects(root, classes=3, per_class=60, seed=0) -> Path:
    """root/<photo name> for the first `classes` of OBJECTS, `per_class` views of each photo as JPEG."""
    from skimage import data
    if not 2 <= classes <= len(OBJECTS):
        raise ValueError("objects: classes must be 2..%d, got %r" % (len(OBJECTS), classes))
    root = Path(root)
    rng = np.random.default_rng(seed)
    for name in OBJECTS[:classes]:
        photo = Image.fromarray(getattr(data, name)()).convert("RGB")
        for i in range(per_class):
            _save_jpeg(_view(photo, rng), root / name / ("%s_%03d.jpg" % (name, i)), rng)
    return root


def shuffled(src, dst, seed=0) -> Path:
    """dst: the photos of class folder `src` with the same class sizes but labels drawn at random."""
    src, dst = Path(src), Path(dst)
    classes = sorted(p for p in src.iterdir() if p.is_dir())
    files = [f for c in classes for f in sorted(c.iterdir()) if f.is_file()]
    counts = [sum(1 for f in c.iterdir() if f.is_file()) for c in classes]
    order = np.random.default_rng(seed).permutation(len(files))
    k = 0
    for c, n in zip(classes, counts):
        (dst / c.name).mkdir(parents=True, exist_ok=True)
        for j in order[k:k + n]:
            shutil.copyfile(files[j], dst / c.name / ("%05d%s" % (j, files[j].suffix)))
        k += n
    return dst
