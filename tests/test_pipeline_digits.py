import numpy as np
import pytest

from host_tools.digits import load_digits, render_dataset, render_digit


def test_render_is_deterministic_and_varies_with_rng():
    images, _ = load_digits()
    a = np.asarray(render_digit(images[5], 64, np.random.default_rng(7)))
    b = np.asarray(render_digit(images[5], 64, np.random.default_rng(7)))
    c = np.asarray(render_digit(images[5], 64, np.random.default_rng(8)))
    assert a.shape == (64, 64, 3) and a.dtype == np.uint8
    assert (a == b).all()
    assert np.abs(a.astype(int) - c).mean() > 1


def test_dark_ink_on_light_paper_where_the_digit_is():
    images, labels = load_digits()
    one = images[list(labels).index(1)]
    img = np.asarray(render_digit(one, (96, 64), None)).astype(float).mean(axis=2)
    assert img.shape == (64, 96)
    # The clean render is centred: ink (dark) in the middle column band, paper (light) at the borders.
    assert img[:, :8].mean() > 200 and img[:, -8:].mean() > 200
    assert img[16:48, 40:56].min() < 100


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="0..16"):
        render_digit(np.full((8, 8), 255.0), 32)


def test_render_dataset_shapes():
    images, labels = load_digits()
    x, y = render_dataset(images[:10], labels[:10], 32, seed=1)
    assert x.shape == (10, 32, 32, 3) and list(y) == list(labels[:10])
