"""The framing rule (host_tools/framing.py): the region of a source that becomes the model input."""
import numpy as np
import pytest

from host_tools import framing
from host_tools.k210 import pixels


@pytest.mark.parametrize("src,dst,mode,box", [
    ((320, 240), (224, 224), "crop", (40, 0, 240, 240)),
    ((320, 240), (64, 64), "crop", (40, 0, 240, 240)),
    ((320, 240), (320, 240), "crop", (0, 0, 320, 240)),
    ((320, 240), (160, 120), "crop", (0, 0, 320, 240)),
    ((240, 320), (100, 50), "crop", (0, 100, 240, 120)),
    ((321, 240), (224, 224), "crop", (40, 0, 240, 240)),
    ((320, 240), (224, 224), "stretch", (0, 0, 320, 240)),
])
def test_crop_box(src, dst, mode, box):
    assert framing.crop_box(*src, *dst, mode) == box


def test_unknown_framing_is_refused():
    with pytest.raises(ValueError, match="squash"):
        framing.crop_box(320, 240, 64, 64, "squash")


def test_model_input_takes_the_region_the_rule_names():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    # the whole frame at the model's size: the snapshot's own 8-bit AI planes
    assert np.array_equal(framing.model_input(frame, 320, 240, 3), frame.transpose(2, 0, 1))
    # a square model: the centre 240x240, through RGB565 as the firmware's cut/resize/pix_to_ai
    got = framing.model_input(frame, 240, 240, 3)
    want = pixels.rgb565_to_888(pixels.rgb888_to_565(frame[:, 40:280])).transpose(2, 0, 1)
    assert np.array_equal(got, want)
    gray = framing.model_input(frame, 64, 64, 1)
    assert gray.shape == (1, 64, 64) and gray.dtype == np.uint8


def test_train_image_crops_before_resizing():
    photo = np.zeros((100, 200, 3), np.uint8)
    photo[:, 50:150] = 255                   # the centre square is white, the sides black
    out = framing.train_image(photo, 32, 32)
    assert out.shape == (32, 32, 3) and out.min() == 255
    assert framing.train_image(photo, 32, 32, "stretch").min() == 0
