"""Dataset readers: class folders, Pascal VOC XML, YOLO txt, fixed split, augmentation; errors name the file."""
import numpy as np
import pytest
from PIL import Image

from host_tools.pipeline import datasets
from host_tools.pipeline.datasets import DatasetError


def _img(path, w=40, h=30, colour=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (w, h), colour).save(path)


def test_class_folders_frame_photos_as_the_board_sees_them(tmp_path):
    for i in range(3):
        _img(tmp_path / "cat" / ("%d.png" % i), colour=(250, 0, 0))
        _img(tmp_path / "dog" / ("%d.jpg" % i), colour=(0, 0, 250))
    (tmp_path / "dog" / "notes.txt").write_text("not a photo")
    names, files = datasets.class_folders(tmp_path)
    assert names == ["cat", "dog"] and [len(f) for f in files] == [3, 3]
    d = datasets.load_classifier_data(tmp_path, (16, 16), val_fraction=0.34, progress=False)
    assert d.names == ["cat", "dog"] and list(d.y_train) == [0, 0, 1, 1] and list(d.y_val) == [0, 1]
    assert d.x_val.shape == (2, 16, 16, 3) and d.x_train_view.shape == (4, 16, 16, 3)
    assert d.sources[0].shape == (20, 20, 3)                      # framed with margin for the crops
    assert d.x_val[0, 8, 8, 0] > 200 and d.x_val[-1, 8, 8, 2] > 200
    (tmp_path / "bird").mkdir()
    _img(tmp_path / "bird" / "0.png")
    with pytest.raises(DatasetError, match="bird: class folder has only 1 image"):
        datasets.class_folders(tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="empty: class folder has no images"):
        datasets.class_folders(tmp_path, min_per_class=1)
    (tmp_path / "cat" / "9.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(DatasetError, match="9.jpg: cannot read image"):
        datasets.load_image(tmp_path / "cat" / "9.jpg")


def test_phone_photos_are_turned_upright(tmp_path):
    img = Image.new("RGB", (40, 20), (0, 0, 0))
    img.paste((255, 255, 255), (0, 0, 20, 20))     # white on the left as stored
    exif = Image.Exif()
    exif[0x0112] = 6                                 # the camera was held upright: rotate 90 degrees clockwise
    img.save(tmp_path / "p.jpg", exif=exif)
    a = datasets.load_image(tmp_path / "p.jpg")
    assert a.shape == (40, 20, 3) and a[5, 10].mean() > 200 and a[35, 10].mean() < 50


def test_split_is_fixed_and_stratified():
    labels = np.repeat(np.arange(4), 25)
    tr, va = datasets.split_indices(labels, 0.2, seed=3)
    tr2, va2 = datasets.split_indices(labels, 0.2, seed=3)
    assert (tr == tr2).all() and (va == va2).all()
    assert set(tr).isdisjoint(va) and len(tr) + len(va) == 100
    assert np.bincount(labels[va]).tolist() == [5, 5, 5, 5]
    # every class keeps a photo on each side, however small or large the fraction
    small = np.array([0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2])
    for frac in (0.05, 0.5, 0.95):
        tr, va = datasets.split_indices(small, frac)
        assert set(small[tr]) == set(small[va]) == {0, 1, 2}, frac


VOC = """<annotation><filename>a.jpg</filename><size><width>40</width><height>30</height></size>
<object><name>face</name><bndbox><xmin>5</xmin><ymin>6</ymin><xmax>20</xmax><ymax>25</ymax></bndbox></object>
<object><name>%s</name><bndbox><xmin>1</xmin><ymin>1</ymin><xmax>10</xmax><ymax>10</ymax></bndbox></object>
</annotation>"""


def test_voc_xml(tmp_path):
    _img(tmp_path / "JPEGImages" / "a.jpg")
    (tmp_path / "Annotations").mkdir()
    (tmp_path / "Annotations" / "a.xml").write_text(VOC % "hand")
    samples = datasets.load_detection_folder(tmp_path, ["face", "hand"])
    assert len(samples) == 1 and samples[0].image.endswith("a.jpg")
    b = samples[0].boxes
    assert (b[0].x0, b[0].y0, b[0].x1, b[0].y1, b[0].cls) == (4, 5, 20, 25, 0) and b[1].cls == 1
    with pytest.raises(DatasetError, match="a.xml: object 1 has class 'hand'"):
        datasets.load_detection_folder(tmp_path, ["face"])


def test_yolo_txt(tmp_path):
    _img(tmp_path / "b.png", 100, 50)
    (tmp_path / "b.txt").write_text("0 0.5 0.5 0.2 0.4\n")
    (s,) = datasets.load_detection_folder(tmp_path, ["face"])
    assert [(round(v.x0), round(v.y0), round(v.x1), round(v.y1)) for v in s.boxes] == [(40, 15, 60, 35)]
    (tmp_path / "b.txt").write_text("0 0.5 0.5\n")
    with pytest.raises(DatasetError, match=r"b.txt:1: expected 'class cx cy w h'"):
        datasets.load_detection_folder(tmp_path, ["face"])
