"""What a new user's own folders hold and `train` must take or name plainly: notes beside the photos, one class,
a phone's EXIF-rotated portrait, boxes outside their photo, labels the board's font lacks, an --out that cannot be
written. None of these trains a model, so they are quick."""
import warnings

import numpy as np
import pytest
from PIL import Image

from host_tools import framing, outdir
from host_tools.__main__ import main
from host_tools.pipeline import datasets, userflow
from host_tools.pipeline.datasets import DatasetError


def _photo(path, w=48, h=32, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.random.default_rng(seed).integers(0, 255, size=(h, w, 3), dtype=np.uint8)
    Image.fromarray(a).save(path)
    return a


def test_notes_beside_the_photos_still_make_a_classifier_and_are_named(tmp_path):
    root = tmp_path / "d"
    for c in ("Red Things", "blue"):
        for i in range(3):
            _photo(root / c / ("IMG_%d.jpg" % i))
    (root / "README.txt").write_text("my photos\n")
    (root / "blue" / "notes.txt").write_text("taken on holiday\n")
    (root / "blue" / "IMG_9.HEIC").write_bytes(b"not read")
    (root / "__MACOSX" / "blue").mkdir(parents=True)                    # a Mac's zip: metadata, not a class
    (root / "__MACOSX" / "blue" / "._IMG_0.jpg").write_bytes(b"\x00\x05\x16\x07")
    assert userflow.detect_kind(root) == "classifier"
    (root / "Red Things").rename(tmp_path / "elsewhere")
    (root / "Red Things").symlink_to(tmp_path / "elsewhere")        # a linked class folder counts too
    assert userflow.detect_kind(root) == "classifier"
    _photo(root / "blue" / "2023 holiday" / "IMG_7.png")               # a folder inside a class folder: that class
    (root / "blue" / "2023 holiday" / "list.csv").write_text("a,b\n")
    names, files = datasets.class_folders(root)
    assert [[str(f.relative_to(root)) for f in fs] for fs in files] == [
        ["Red Things/IMG_0.jpg", "Red Things/IMG_1.jpg", "Red Things/IMG_2.jpg"],
        ["blue/2023 holiday/IMG_7.png", "blue/IMG_0.jpg", "blue/IMG_1.jpg", "blue/IMG_2.jpg"]]
    said = []
    userflow._note_skipped(root, names, files, said.append)
    assert len(said) == 1 and "skipped 3 file(s)" in said[0] and "blue/IMG_9.HEIC" in said[0] \
        and "blue/notes.txt" in said[0] and "blue/2023 holiday/list.csv" in said[0], said


def test_class_folders_holding_only_folders_of_photos(tmp_path):
    for c in ("cats", "dogs"):
        _photo(tmp_path / c / "2023" / "a.jpg")
        _photo(tmp_path / c / "2024" / "b.jpg")
    assert userflow.detect_kind(tmp_path) == "classifier"
    assert [len(fs) for fs in datasets.class_folders(tmp_path)[1]] == [2, 2]


def test_one_class_folder_is_named(tmp_path, capsys):
    for i in range(3):
        _photo(tmp_path / "d" / "Only Cats" / ("%d.png" % i))
    assert main(["train", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "only one class folder (Only Cats)" in err[0], err
    assert not (tmp_path / "o").exists()


def _exif_rotated(path, upright):
    """A phone's portrait photo: pixels stored sideways, EXIF Orientation 6 (turn 90 degrees clockwise to show)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(upright).transpose(Image.ROTATE_90).save(path, "JPEG", quality=95, exif=exif)


def test_an_exif_rotated_photo_is_upright_in_train_kmodel_run_and_the_virtual_camera(tmp_path):
    from host_tools.sim.camera import load_sources
    upright = np.zeros((60, 40, 3), np.uint8)
    upright[:20] = (250, 20, 20)                     # red on top of a portrait photo
    p = tmp_path / "IMG_0001.JPG"
    _exif_rotated(p, upright)
    with Image.open(p) as im:
        assert im.size == (60, 40)                   # stored sideways
    seen = framing.read_photo(p)                     # kmodel run's and compile --dataset's reading
    assert seen.shape == (60, 40, 3) and seen[:15, :, 0].mean() > 200 and seen[30:, :, 0].mean() < 50
    assert np.array_equal(datasets.load_image(p), seen)                   # train's
    assert np.array_equal(load_sources([p])[0][1], seen)                  # the virtual camera's
    assert framing.photo_size(p) == (40, 60)                              # a detector's boxes are checked on it


VOC = ("<annotation><filename>a.jpg</filename><size><width>48</width><height>32</height></size><object><name>cat"
       "</name><bndbox><xmin>%s</xmin><ymin>2</ymin><xmax>%s</xmax><ymax>30</ymax></bndbox></object></annotation>")


@pytest.mark.parametrize("xmin,xmax,words", [("5", "90", "reaches outside the 48x32 photo"),
                                             ("40", "10", "an empty box"),
                                             ("-20", "30", "reaches outside")])
def test_a_voc_box_outside_its_photo_or_empty_is_named(tmp_path, xmin, xmax, words):
    _photo(tmp_path / "a.jpg")
    (tmp_path / "a.xml").write_text(VOC % (xmin, xmax))
    with pytest.raises(DatasetError, match="a.xml: object 0 .*%s" % words):
        datasets.load_detection_folder(tmp_path, ["cat"])


def test_a_box_a_pixel_over_the_edge_is_clipped(tmp_path):
    _photo(tmp_path / "a.jpg")
    (tmp_path / "a.xml").write_text(VOC % ("0", "49"))          # labelling tools' rounding
    (s,) = datasets.load_detection_folder(tmp_path, ["cat"])
    assert (s.boxes[0].x0, s.boxes[0].x1) == (0.0, 48.0)


def test_a_yolo_box_outside_its_photo_is_named(tmp_path):
    _photo(tmp_path / "b.png", 100, 50)
    (tmp_path / "b.txt").write_text("0 0.5 0.5 0.2 0.4\n0 0.95 0.5 0.5 0.4\n")
    with pytest.raises(DatasetError, match=r"b.txt:2 \(0 0.95 0.5 0.5 0.4\): the box reaches outside the 100x50"):
        datasets.load_detection_folder(tmp_path, ["cup"])


def test_an_unwritable_out_is_refused_before_any_photo_is_read(tmp_path, monkeypatch, capsys):
    """As root a read-only folder is still writable, so the check is made to see one (a real read-only file system
    gives access(2) EROFS, which is what it asks)."""
    import os
    ro = tmp_path / "ro"
    ro.mkdir()
    real = os.access
    monkeypatch.setattr(os, "access", lambda p, mode, **k: False if str(p) == str(ro) else real(p, mode, **k))

    def no_reading(*a, **k):
        raise AssertionError("photos read before --out was checked")
    monkeypatch.setattr(datasets, "class_folders", no_reading)
    for out in (ro, ro / "new" / "deeper"):
        with pytest.raises(outdir.OutError, match="cannot write"):
            outdir.claim(out, outdir.MODEL_FILES)
        for c in ("a", "b"):
            for i in range(2):
                _photo(tmp_path / "d" / c / ("%d.jpg" % i))
        assert main(["train", "--data", str(tmp_path / "d"), "--out", str(out)]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: --out %s: cannot write" % out), err


def test_labels_the_board_font_lacks_are_named_and_plots_stay_quiet(tmp_path):
    said = []
    userflow._note_font(["Café crème", "cat", "猫"], said.append)
    assert len(said) == 1 and "Café crème, 猫" in said[0] and "small boxes" in said[0]
    userflow._note_font(["cat", "dog-2"], said.append)
    assert len(said) == 1
    from host_tools.pipeline import train
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        train.save_confusion(np.eye(2, dtype=int), ["猫", "Café"], tmp_path / "c.png", "t")
        train.save_confusion(np.eye(2, dtype=int), ["Camera Man", "Lab Slides"], tmp_path / "c.png", "My_Photos")
    assert (tmp_path / "c.png").stat().st_size > 0


def test_ctrl_c_during_an_epoch_bar_starts_its_own_error_line(capsys):
    """Keras calls no callback on Ctrl-C, so the epoch bar is left open; the error must not trail it."""
    from tqdm import tqdm

    from host_tools import command
    bar = tqdm(total=10, desc="my_things", unit="epoch")
    bar.update(3)
    assert command.fail(KeyboardInterrupt()) == command.INTERRUPTED
    err = capsys.readouterr().err
    assert "\nerror: interrupted" in err and err.rstrip().endswith("files are written whole or not at all"), err


@pytest.mark.parametrize("names", ["names: ['mug', \"cat\"]  # two", "names:\n  - mug\n  - cat",
                                   "names:\n  0: mug\n  1: cat"])
def test_an_ultralytics_or_roboflow_yolo_set_images_and_labels_folders_and_data_yaml(tmp_path, names):
    root = tmp_path / "mugs"
    for split, stem in (("train", "a"), ("valid", "b")):
        _photo(root / split / "images" / (stem + ".jpg"), 100, 50)
        (root / split / "labels").mkdir(parents=True)
        (root / split / "labels" / (stem + ".txt")).write_text("1 0.5 0.5 0.2 0.4\n")
    (root / "data.yaml").write_text("train: ../train/images\nval: ../valid/images\nnc: 2\n%s\n" % names)
    assert userflow.detect_kind(root) == "detector"
    assert datasets.detector_labels(root) == ["mug", "cat"]
    samples = datasets.load_detection_folder(root, ["mug", "cat"])
    assert [s.image[len(str(root)):] for s in samples] == ["/train/images/a.jpg", "/valid/images/b.jpg"]
    assert [(round(b.x0), round(b.y0), round(b.x1), round(b.y1), b.cls) for b in samples[0].boxes] == \
        [(40, 15, 60, 35, 1)]


def test_a_data_yaml_without_readable_names_is_named(tmp_path):
    _photo(tmp_path / "images" / "a.jpg")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "a.txt").write_text("0 0.5 0.5 0.2 0.4\n")
    (tmp_path / "data.yaml").write_text("nc: 1\nnames: {0: mug}\n")
    with pytest.raises(DatasetError, match=r"data.yaml: cannot read its 'names:'.*--labels"):
        datasets.detector_labels(tmp_path)


def test_kmodel_run_on_a_training_folder_reads_the_photos_of_its_class_folders(tmp_path, capsys):
    import json
    from pathlib import Path
    root = tmp_path / "My Photos"
    for c in ("Camera Man", "blue"):
        for i in range(2):
            _photo(root / c / ("IMG_%d.jpg" % i), seed=i)
    _photo(root / ".thumbnails" / "t.jpg")
    kmodel = Path(__file__).resolve().parents[1] / "models" / "digits.kmodel"
    assert main(["kmodel", "run", str(kmodel), "--input", str(root), "--json"]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [x["input"][len(str(root)) + 1:] for x in lines] == ["Camera Man/IMG_0.jpg", "Camera Man/IMG_1.jpg",
                                                                "blue/IMG_0.jpg", "blue/IMG_1.jpg"]


@pytest.mark.parametrize("orientation", [6, 8, 5, 7])
def test_voc_boxes_drawn_on_a_sideways_stored_photo_turn_with_it(tmp_path, orientation):
    """labelImg draws on the pixels as stored and writes the stored size; the photo is trained upright."""
    stored = np.zeros((40, 60, 3), np.uint8)
    stored[5:15, 40:55] = (255, 0, 0)                # a red patch: the object, as stored
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(stored).save(tmp_path / "a.jpg", "JPEG", quality=95, exif=exif)
    voc = ("<annotation><filename>a.jpg</filename><size><width>%d</width><height>%d</height></size><object><name>"
           "cat</name><bndbox><xmin>41</xmin><ymin>6</ymin><xmax>55</xmax><ymax>15</ymax></bndbox></object>"
           "</annotation>")
    (tmp_path / "a.xml").write_text(voc % (60, 40))
    (s,) = datasets.load_detection_folder(tmp_path, ["cat"])
    img = datasets.load_image(s.image)
    assert img.shape[:2] == (60, 40)
    b = s.boxes[0]
    inside = img[int(b.y0) + 1:int(b.y1) - 1, int(b.x0) + 1:int(b.x1) - 1, 0]
    assert inside.size and inside.mean() > 200 and img[..., 0].mean() < 60, (b, inside.mean())
    upright = voc.replace("<xmin>41</xmin><ymin>6</ymin><xmax>55</xmax><ymax>15</ymax>",
                          "<xmin>11</xmin><ymin>41</ymin><xmax>20</xmax><ymax>50</ymax>")
    (tmp_path / "a.xml").write_text(upright % (40, 60))   # the upright photo's size: its boxes are upright too
    (s,) = datasets.load_detection_folder(tmp_path, ["cat"])
    assert (s.boxes[0].x0, s.boxes[0].y0, s.boxes[0].x1, s.boxes[0].y1) == (10, 40, 20, 50)


def test_loading_a_detectors_photos_shows_a_progress_bar(tmp_path, capsys):
    from host_tools.pipeline import detector
    for k in range(5):               # five boxes: one per anchor
        _photo(tmp_path / ("a%d.jpg" % k), seed=k)
        (tmp_path / ("a%d.xml" % k)).write_text((VOC % ("5", "40")).replace("a.jpg", "a%d.jpg" % k))
    samples = datasets.load_detection_folder(tmp_path, ["cat"])
    images, boxes = detector.frames(samples, detector.default_config(samples, ["cat"]))
    assert len(images) == 5 and "photos: 100%" in capsys.readouterr().err


def test_a_macs_metadata_files_are_neither_photos_nor_annotations(tmp_path):
    """'._name' AppleDouble files beside each file (a Mac's USB stick) and __MACOSX/ (its zips) are skipped."""
    _photo(tmp_path / "a.jpg")
    (tmp_path / "a.XML").write_text(VOC % ("5", "40"))
    for junk in ("._a.jpg", "._a.XML", "__MACOSX/._a.XML", "__MACOSX/a.XML"):
        (tmp_path / junk).parent.mkdir(exist_ok=True)
        (tmp_path / junk).write_bytes(b"\x00\x05\x16\x07 Mac OS X metadata")
    assert userflow.detect_kind(tmp_path) == "detector"
    assert datasets.detector_labels(tmp_path) == ["cat"]
    (s,) = datasets.load_detection_folder(tmp_path, ["cat"])
    assert s.image.endswith("/a.jpg")


def test_a_class_folder_of_iphone_heic_photos_is_named_with_what_it_holds(tmp_path):
    for i in range(2):
        _photo(tmp_path / "cats" / ("IMG_%d.jpg" % i))
        (tmp_path / "dogs" / ("IMG_%d.HEIC" % i)).parent.mkdir(exist_ok=True)
        (tmp_path / "dogs" / ("IMG_%d.HEIC" % i)).write_bytes(b"ftypheic")
    with pytest.raises(DatasetError, match=r"dogs: class folder has no images .*holds 2 other file\(s\), such as "
                                           r"IMG_0.HEIC \(an iPhone's .HEIC: save as JPEG\)"):
        datasets.class_folders(tmp_path)
