"""The KPU emulator against the real kmodel fixtures and the outputs they must give."""
import numpy as np
import pytest

from conftest import fixture_file
from host_tools.kmodel import load, run
from host_tools.kmodel.yolo import draw_boxes, region_decode

VOC = ("aeroplane bicycle bird boat bottle bus car cat chair cow diningtable dog horse motorbike person "
       "pottedplant sheep sofa train tvmonitor").split()
YOLO_ANCHORS = (1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52)
CIFAR_K210 = [1.181304, -5.381746, 1.580029, 0.045343, 0.511492, -0.656629, -3.597826, 0.561016, -0.733270,
              -3.771462]


def test_iris_float_fc_model():
    m = load(fixture_file("nncase-iris", "iris.kmodel"))
    assert m.input_is_float and m.input_shape == (4, 1, 1)
    assert m.output_typecodes == ["f"] and m.fmap_shapes == [(1, 1, 12)]   # w() is the byte count on the firmware
    out = run(m, [5.1, 3.8, 1.9, 0.4])[0].ravel()
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [16.077795, 5.607656, -2.071745], atol=1e-4)
    assert int(np.argmax(out)) == 0   # setosa


def test_emc_cifar10_within_hardware_tolerance():
    m = load(fixture_file("emc-cifar10", "cifar10_output.kmodel"))
    assert [L.type for L in m.layers].count(21) == 1
    x = np.fromfile(fixture_file("emc-cifar10", "plane_input.bin"), np.uint8)
    out = run(m, x)[0].ravel()
    err = np.abs(out - np.array(CIFAR_K210))
    assert err.max() < 0.0063, err
    assert int(np.argmax(out)) == 2   # the K210 also ranks class 2 first


@pytest.fixture(scope="module")
def yolo_out():
    m = load(fixture_file("nncase-yolo20", "yolo.kmodel"))
    x = np.fromfile(fixture_file("nncase-yolo20", "dog_rgb888_planar_320x240.bin"), np.uint8)
    return m, x, run(m, x)[0]


def test_yolo20_output_map(yolo_out):
    m, _, out = yolo_out
    assert m.input_shape == (3, 240, 320)
    assert m.output_shapes == [(125, 7, 10)] and m.output_typecodes == ["f"]
    assert m.fmap_shapes == [(1, 1, 35000)]     # the firmware's fmap of a non-conv last layer: w() = bytes
    assert out.shape == (125, 7, 10) and out.dtype == np.float32


def test_yolo20_finds_dog_bicycle_car_where_the_board_does(yolo_out, tmp_path):
    m, x, out = yolo_out
    boxes = region_decode(out, YOLO_ANCHORS, 0.5, 0.2, 320, 240)
    names = sorted(VOC[b.classid] for b in boxes)
    assert names == ["bicycle", "car", "dog"]
    by = {VOC[b.classid]: b for b in boxes}
    centre = {k: (b.x + b.w / 2, b.y + b.h / 2) for k, b in by.items()}
    # k210_lcd_photo.png: bicycle spans the middle, car top right, dog left half and lower
    assert by["bicycle"].w > 160 and 100 < centre["bicycle"][0] < 220
    assert centre["car"][0] > 180 and centre["car"][1] < 80
    assert centre["dog"][0] < 120 and centre["dog"][1] > 120
    assert all(b.objnum == 3 for b in boxes) and [b.index for b in boxes] == [0, 1, 2]
    png = tmp_path / "yolo20_dog.png"
    draw_boxes(x.reshape(3, 240, 320).transpose(1, 2, 0), boxes, VOC).save(png)
    assert png.stat().st_size > 10000


def test_region_decode_is_pure_and_threshold_matters(yolo_out):
    _, _, out = yolo_out
    before = out.copy()
    strict = region_decode(out, YOLO_ANCHORS, 0.95, 0.2, 320, 240)
    assert [VOC[b.classid] for b in strict] == ["bicycle"]
    np.testing.assert_array_equal(out, before)


def test_region_decode_refuses_a_map_the_firmware_cannot_split():
    # 3 anchors x (5 + 5 classes) = 30 channels, but the firmware reads 30 / 5 - 5 = 1 class
    with pytest.raises(ValueError, match="classes"):
        region_decode(np.zeros((30, 7, 10), np.float32), YOLO_ANCHORS[:6], 0.5, 0.2, 320, 240)


def test_mnist_runs_on_28x28_grayscale():
    m = load(fixture_file("maixpy-mnist", "mnist.kmodel"))
    assert m.input_shape == (1, 28, 28)
    out = run(m, np.zeros((1, 28, 28), np.uint8))[0].ravel()
    assert out.shape == (10,) and abs(float(out.sum()) - 1) < 1e-4


def test_wrong_input_shape_is_a_clear_error():
    m = load(fixture_file("maixpy-mnist", "mnist.kmodel"))
    with pytest.raises(ValueError, match="1x28x28"):
        run(m, np.zeros((3, 28, 28), np.uint8))


def mnist_style(img8: np.ndarray) -> np.ndarray:
    """A scikit-learn 8x8 digit (0..16) as MNIST draws digits: white on black, a 20x20 box, centred by mass."""
    from PIL import Image
    from scipy import ndimage
    a = Image.fromarray((img8 / 16.0 * 255).astype(np.float32)).resize((20, 20), Image.LANCZOS)
    out = np.zeros((28, 28), np.float32)
    out[4:24, 4:24] = np.clip(np.asarray(a), 0, 255)
    cy, cx = ndimage.center_of_mass(out)
    return np.clip(ndimage.shift(out, (14 - cy, 14 - cx), order=1), 0, 255).astype(np.uint8)


def test_mnist_accuracy_on_sklearn_digits():
    # 8x8 scikit-learn digits are blockier than MNIST: the figure (0.694 on all 1797) measures the domain
    # shift as much as the model; the floor catches a broken emulator (chance is 0.1).
    from sklearn.datasets import load_digits
    d = load_digits()
    m = load(fixture_file("maixpy-mnist", "mnist.kmodel"))
    pred = [int(np.argmax(run(m, mnist_style(img).reshape(1, 28, 28))[0])) for img in d.images]
    acc = float(np.mean(np.array(pred) == d.target))
    print("maixpy-mnist accuracy on sklearn digits: %.3f" % acc)
    assert acc > 0.65


def test_dense_layer_on_the_kpu_computes_only_the_pixel_that_is_read():
    """ADD_PADDING -> 1x1 conv of the 4x4 map -> REMOVE_PADDING (nncase's dense layer on the KPU): the fast path
    computes pixel (0, 0) alone, giving the reference's outputs; not where anything else reads the other pixels."""
    from types import SimpleNamespace
    from host_tools.kmodel import emulator
    m = load(fixture_file("maixpy-mnist", "mnist.kmodel"))
    kinds = [L.type_name for L in m.layers]
    i = kinds.index("K210_ADD_PADDING") + 1
    conv = emulator.plans(m)
    assert list(emulator._one_pixel(m, conv)) == [m.layers[i].index]
    fast, calls = conv[m.layers[i].index].fast, []
    one = fast.one_pixel
    fast.one_pixel = lambda x: calls.append(x.size) or one(x)
    rng = np.random.default_rng(3)
    xs = [rng.integers(0, 256, (1, 28, 28), dtype=np.uint8) for _ in range(4)] + [
        np.zeros((1, 28, 28), np.uint8), np.full((1, 28, 28), 255, np.uint8)]
    for x in xs:
        np.testing.assert_array_equal(run(m, x)[0], run(m, x, exact=True)[0])
    assert calls == [m.layers[i].in_shape[0]] * len(xs)
    out = m.layers[i].fields["out"]
    rm = m.layers[i + 1]
    rm.fields["in"] += 1                 # REMOVE_PADDING reading pixel (0, 1)
    assert not emulator._one_pixel(m, conv)
    rm.fields["in"] -= 1
    m.layers.append(SimpleNamespace(index=len(m.layers), type=12, fields={}, mem=[("in", out + 17, 1, "r")]))
    assert not emulator._one_pixel(m, conv)          # a later layer reads pixel (0, 1) of channel 1
    m.layers.pop()
    m.outputs.append(type(m.outputs[0])(out + 30, 2))
    assert not emulator._one_pixel(m, conv)          # a model output holds pixels of channel 1
    m.outputs.pop()
    assert emulator._one_pixel(m, conv)
