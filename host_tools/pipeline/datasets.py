"""Datasets: class-subfolder folders, Pascal VOC XML / YOLO txt annotations, a fixed stratified validation split.

Images come out as uint8 HWC RGB arrays; the model input is image / 255 (see train.py `to_input`).
"""
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from host_tools.framing import PHOTO_SUFFIXES

IMAGE_EXTS = tuple(sorted(PHOTO_SUFFIXES))     # what `kmodel run` and the virtual camera read too


class DatasetError(ValueError):
    """A dataset that cannot be read; the message names the file or folder and what is wrong."""


@dataclass
class Box:
    """One annotated object in image pixels: corners (x0, y0) inclusive top-left, (x1, y1) exclusive."""
    x0: float
    y0: float
    x1: float
    y1: float
    cls: int = 0


@dataclass
class DetectionSample:
    image: str                      # path, or "" when pixels are held in memory
    boxes: list = field(default_factory=list)


def split_indices(labels, val_fraction=0.2, seed=0):
    """Fixed, stratified train/validation split: the same labels and seed always give the same indices. Every
    class with at least 2 samples has at least one on each side."""
    labels = np.asarray(labels)
    if not 0 < val_fraction < 1:
        raise DatasetError("val_fraction must be in (0, 1), got %r" % val_fraction)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(labels):
        idx = np.flatnonzero(labels == c)
        idx = idx[rng.permutation(len(idx))]
        n_val = min(max(1, int(round(len(idx) * val_fraction))), max(1, len(idx) - 1))
        val.extend(idx[:n_val])
        train.extend(idx[n_val:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(val, dtype=np.int64))


def load_image(path, size=None, at_least=None) -> np.ndarray:
    """RGB uint8 HWC, upright as the camera's EXIF orientation says (framing.read_photo, as `kmodel run` and the
    virtual camera read it); size (w, h) resizes (bilinear). at_least (w, h): a big JPEG may be decoded at a
    reduced scale that still covers it (much faster)."""
    from host_tools.framing import read_photo
    try:
        rgb = read_photo(path, draft=at_least)
    except ValueError as e:
        raise DatasetError(str(e)) from None
    if size is None:
        return rgb
    from PIL import Image
    return np.asarray(Image.fromarray(rgb).resize(tuple(size), Image.BILINEAR))


def class_folders(root, min_per_class=2):
    """(class names, [[image paths] per class]) of a folder of class subfolders (sorted names = labels; the photos
    anywhere below each); training needs 2 photos per class at least, one to hold out for validation."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError("%s: not a folder" % root)
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not ignored_name(p.name))
    if len(names) < 2:
        raise DatasetError("%s: need at least 2 class subfolders (one per label, images inside), found %d"
                           % (root, len(names)))
    files = []
    for n in names:
        # as Keras' image_dataset_from_directory: photos in folders inside a class folder are that class's too
        below = files_below(root / n)
        fs = [p for p in below if p.suffix.lower() in IMAGE_EXTS]
        if not fs:
            held = "; it holds %d other file(s), such as %s (an iPhone's .HEIC: save as JPEG)" % (
                len(below), below[0].name) if below else ""
            raise DatasetError("%s: class folder has no images (%s)%s" % (root / n, ", ".join(IMAGE_EXTS), held))
        if len(fs) < min_per_class:
            raise DatasetError("%s: class folder has only %d image(s); each class needs at least %d, one held out "
                               "for validation" % (root / n, len(fs), min_per_class))
        files.append(fs)
    return names, files


@dataclass
class ClassifierData:
    """A class-folder dataset ready for training: training sources framed with margin for the augmentation's
    crops, and the photos as the board's camera hands them to the KPU (framing.photo_input), which is what the
    BatchNorm statistics, the int8 calibration and every validation figure are measured on."""
    names: list
    train_files: list
    val_files: list
    sources: list                   # training photos framed at camera_augment.source_size, uint8 HWC
    y_train: np.ndarray
    x_train_view: np.ndarray        # (N, h, w, 3) uint8: the first N training photos as the board sees them
    x_val: np.ndarray               # (M, h, w, 3) uint8: validation photos as the board sees them
    y_val: np.ndarray


def board_view(rgb, w, h, framing) -> np.ndarray:
    """(h, w, 3) uint8: what the KPU receives when the board's camera looks at this photo."""
    from host_tools.framing import photo_input
    return photo_input(rgb, w, h, 3, framing).transpose(1, 2, 0)


def load_classifier_data(root, size, framing="crop", val_fraction=0.2, seed=0, progress=True) -> ClassifierData:
    from tqdm import tqdm

    from host_tools.framing import CAMERA_H, CAMERA_W, check, train_image
    from host_tools.pipeline.camera_augment import source_size
    check(framing, "--framing")
    w, h = size
    names, per_class = class_folders(root)
    files = [f for fs in per_class for f in fs]
    labels = np.array([i for i, fs in enumerate(per_class) for _ in fs], dtype=np.int64)
    tr, va = split_indices(labels, val_fraction, seed)
    sw, sh = source_size(w, h)
    sources, views = [], []
    for f in tqdm(files, desc="photos", unit="photo", disable=not progress, dynamic_ncols=True):
        rgb = load_image(f, at_least=(max(2 * sw, CAMERA_W), max(2 * sh, CAMERA_H)))
        sources.append(train_image(rgb, sw, sh, framing))
        views.append(board_view(rgb, w, h, framing))
    views = np.stack(views)
    return ClassifierData(names=names, train_files=[files[i] for i in tr], val_files=[files[i] for i in va],
                          sources=[sources[i] for i in tr], y_train=labels[tr], x_train_view=views[tr],
                          x_val=views[va], y_val=labels[va])


def read_voc(xml_path, class_names):
    """One Pascal VOC XML file -> DetectionSample (image path resolved beside the XML or in ../JPEGImages)."""
    xml_path = Path(xml_path)
    try:
        root = ET.parse(xml_path).getroot()
    except (OSError, ET.ParseError) as e:
        raise DatasetError("%s: %s" % (xml_path, e)) from None
    fname = root.findtext("filename")
    if not fname:
        raise DatasetError("%s: missing <filename>" % xml_path)
    candidates = [xml_path.parent / fname, xml_path.parent.parent / "JPEGImages" / fname]
    image = next((p for p in candidates if p.is_file()), None)
    if image is None:
        raise DatasetError("%s: image %s not found beside it or in ../JPEGImages" % (xml_path, fname))
    size, upright = _voc_frame(xml_path, root, image)
    boxes = []
    for k, obj in enumerate(root.iter("object")):
        name = obj.findtext("name")
        if name not in class_names:
            raise DatasetError("%s: object %d has class %r, not in %s" % (xml_path, k, name, list(class_names)))
        bb = obj.find("bndbox")
        try:
            x0, y0, x1, y1 = (float(bb.findtext(t)) for t in ("xmin", "ymin", "xmax", "ymax"))
        except (AttributeError, TypeError, ValueError):
            raise DatasetError("%s: object %d has no valid <bndbox>" % (xml_path, k)) from None
        where = "%s: object %d (xmin %g, ymin %g, xmax %g, ymax %g)" % (xml_path, k, x0, y0, x1, y1)
        boxes.append(_inside(upright(Box(x0 - 1, y0 - 1, x1, y1, class_names.index(name))), size, where))  # 1-based
    return DetectionSample(str(image), boxes)


def _voc_frame(xml_path, root, image):
    """((w, h) of the upright photo, box -> box in its pixels). A phone's portrait photo is stored sideways with an
    EXIF turn; a tool that drew the boxes on it as stored (labelImg does) writes the stored size in <size>, and then
    the boxes are turned with the photo. Without a quarter turn the two cannot be told apart: taken as upright."""
    from host_tools.framing import QUARTER_TURNS, photo_header, upright_point
    try:
        w, h, orientation = photo_header(image)
    except ValueError as e:
        raise DatasetError(str(e)) from None
    try:
        said = (int(float(root.findtext("size/width"))), int(float(root.findtext("size/height"))))
    except (TypeError, ValueError):
        said = None
    if orientation not in QUARTER_TURNS:
        return (w, h), lambda b: b
    if said != (w, h):
        return (h, w), lambda b: b

    def turn(b):
        (ax, ay), (bx, by) = upright_point(b.x0, b.y0, orientation, w, h), upright_point(b.x1, b.y1, orientation, w, h)
        return Box(min(ax, bx), min(ay, by), max(ax, bx), max(ay, by), b.cls)
    return (h, w), turn


EDGE_SLACK = 2.0     # pixels a box may stick out of its photo (labelling tools' rounding); clipped to the photo


def _photo_size(image):
    from host_tools.framing import photo_size
    try:
        return photo_size(image)
    except ValueError as e:
        raise DatasetError(str(e)) from None


def _inside(box: Box, size, where) -> Box:
    """The box clipped to its (w, h) photo; DatasetError naming it when it is empty or lies outside the photo."""
    w, h = size
    if not (box.x0 < box.x1 and box.y0 < box.y1):
        raise DatasetError("%s: an empty box (its max is not beyond its min)" % where)
    if box.x0 < -EDGE_SLACK or box.y0 < -EDGE_SLACK or box.x1 > w + EDGE_SLACK or box.y1 > h + EDGE_SLACK:
        raise DatasetError("%s: the box reaches outside the %dx%d photo" % (where, w, h))
    return Box(max(box.x0, 0.0), max(box.y0, 0.0), min(box.x1, float(w)), min(box.y1, float(h)), box.cls)


def yolo_txt_path(image_path) -> Path:
    """Where an image's YOLO txt is: beside it (darknet, labelImg), else as Ultralytics and Roboflow lay sets out,
    .../images/.../x.jpg -> .../labels/.../x.txt (the last 'images' folder of the path). None when neither is."""
    image_path = Path(image_path)
    beside = image_path.with_suffix(".txt")
    if beside.is_file():
        return beside
    parts = image_path.with_suffix(".txt").parts
    if "images" in parts[:-1]:
        i = len(parts) - 2 - parts[:-1][::-1].index("images")
        other = Path(*parts[:i], "labels", *parts[i + 1:])
        if other.is_file():
            return other
    return None


def read_yolo_txt(image_path, class_count):
    """An image's YOLO txt (class cx cy w h, normalised) -> DetectionSample in pixels."""
    image_path = Path(image_path)
    txt = yolo_txt_path(image_path)
    if txt is None:
        raise DatasetError("%s: no annotation file %s beside it or in a labels/ folder beside images/"
                           % (image_path, image_path.with_suffix(".txt").name))
    w, h = size = _photo_size(image_path)
    boxes = []
    for n, line in enumerate(txt.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        try:
            c, cx, cy, bw, bh = int(parts[0]), *map(float, parts[1:5])
        except (ValueError, IndexError):
            raise DatasetError("%s:%d: expected 'class cx cy w h', got %r" % (txt, n, line)) from None
        if not 0 <= c < class_count:
            raise DatasetError("%s:%d: class %d outside 0..%d" % (txt, n, c, class_count - 1))
        boxes.append(_inside(Box((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h, c), size,
                             "%s:%d (%s)" % (txt, n, line.strip())))
    return DetectionSample(str(image_path), boxes)


def files_below(root, pattern="*") -> list:
    """The files below root matching pattern, sorted, without hidden ones or those in hidden folders: a Mac leaves
    '._IMG_1.jpg' and '._IMG_1.xml' copies of its metadata beside every file on a USB stick, and '__MACOSX/' in a
    zip, none of which is a photo or an annotation."""
    root = Path(root)
    return sorted(p for p in root.rglob(pattern) if p.is_file() and not any(
        ignored_name(part) for part in p.relative_to(root).parts))


def voc_files(root) -> list:
    """The Pascal VOC annotation files below root (.xml, any case), sorted."""
    return [p for p in files_below(root) if p.suffix.lower() == ".xml"]


def ignored_name(name) -> bool:
    """A hidden file or folder, or a Mac's zip metadata folder: never a photo, annotation or class."""
    return name.startswith(".") or name == "__MACOSX"


def load_detection_folder(root, class_names):
    """Detection samples from a folder of VOC XML files (Annotations/ or beside images) or of images + YOLO txt."""
    root = Path(root)
    xmls = voc_files(root)
    if xmls:
        return [read_voc(p, class_names) for p in xmls]
    images = [p for p in files_below(root) if p.suffix.lower() in IMAGE_EXTS]
    if not images:
        raise DatasetError("%s: no VOC .xml files and no images with YOLO .txt annotations" % root)
    return [read_yolo_txt(p, len(class_names)) for p in images]


LABEL_FILES = ("classes.txt", "obj.names")   # the class names of a YOLO txt set, one per line (darknet, labelImg)


def detector_labels(root) -> list:
    """A detector's class names from its data: the object names of the VOC files (sorted), or the names listed in
    classes.txt / obj.names beside YOLO txt files (line n = class n)."""
    root = Path(root)
    xmls = voc_files(root)
    if xmls:
        names = set()
        for p in xmls:
            try:
                names.update(o.findtext("name") for o in ET.parse(p).getroot().iter("object"))
            except (OSError, ET.ParseError) as e:
                raise DatasetError("%s: %s" % (p, e)) from None
        names.discard(None)
        if not names:
            raise DatasetError("%s: the VOC files name no objects" % root)
        return sorted(names)
    for n in LABEL_FILES:
        found = files_below(root, n)
        if found:
            names = [ln.strip() for ln in found[0].read_text().splitlines() if ln.strip()]
            if not names:
                raise DatasetError("%s: holds no class names" % found[0])
            return names
    yaml = sorted(root.glob("*.yaml")) + sorted(root.glob("*.yml"))
    if yaml:
        return yaml_names(yaml[0])
    raise DatasetError("%s: YOLO txt annotations number their classes; name them in %s (one per line) or give "
                       "--labels name1,name2" % (root, " or ".join(LABEL_FILES)))


def yaml_names(path) -> list:
    """The `names` of an Ultralytics / Roboflow data.yaml, in the forms they write: `names: [a, b]`, or a block of
    `- a` lines or of `0: a` lines (PyYAML is not a dependency; anything else is refused, naming the file)."""
    path = Path(path)
    lines = path.read_text(errors="replace").splitlines()
    start = next((i for i, ln in enumerate(lines) if re.match(r"names\s*:", ln)), None)
    if start is None:
        raise DatasetError("%s: no 'names:' (the class names); give --labels name1,name2" % path)
    def unquote(v):
        return v.strip().strip("'\"").strip()
    inline = lines[start].split(":", 1)[1].split("#")[0].strip()
    if inline:
        m = re.fullmatch(r"\[(.*)\]", inline)
        names = [unquote(v) for v in m.group(1).split(",")] if m else []
    else:
        names, keys = [], []
        for ln in lines[start + 1:]:
            m = re.match(r"\s+(?:-\s*(.+)|(\d+)\s*:\s*(.+))$", ln)
            if not m:
                break
            names.append(unquote(m.group(1) or m.group(3)))
            keys.append(None if m.group(1) else int(m.group(2)))
        if any(k is not None for k in keys) and keys != list(range(len(keys))):
            names = []
    if not names or not all(names):
        raise DatasetError("%s: cannot read its 'names:' as a list of class names; give --labels name1,name2" % path)
    return names
