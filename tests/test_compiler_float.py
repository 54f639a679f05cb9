"""compile of a float tflite. A vector model, as ncc's --inference-type float: float FULLY_CONNECTED layers on the
CPU (nncase's iris example gives its printed numbers; a small Keras vector model matches LiteRT). A model with
convolutions: the convs on the KPU, calibrated on --dataset images, the rest float CPU layers (the digits demo's
float tflite and a conv model trained here, against LiteRT's float outputs); refusals name the layer."""
import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, fixture_file
from host_tools import framing
from host_tools import manifest as mf
from host_tools.__main__ import main as cli
from host_tools.compiler import compile_tflite
from host_tools.kmodel import load, run

IRIS_OUT = [16.077795, 5.607656, -2.071745]       # nncase examples/iris: the numbers it prints for this input


def test_iris_tflite_compiles_to_the_float_kmodel_nncase_made(tmp_path, capsys):
    src = fixture_file("nncase-iris", "iris.tflite")
    assert cli(["compile", str(src), "--out", str(tmp_path), "--labels", "setosa,versicolor,virginica"]) == 0
    m = mf.load(tmp_path / "iris.json")
    assert m.input == {"w": 1, "h": 1, "c": 4, "format": "float"} and m.outputs == [{"shape": [3, 1, 1], "type": "f"}]
    ours = load(tmp_path / "iris.kmodel")
    out = run(ours, np.array([5.1, 3.8, 1.9, 0.4], np.float32))[0].reshape(-1)
    assert np.allclose(out, IRIS_OUT, atol=1e-4), out
    # the same two layers as nncase's own kmodel: FULLY_CONNECTED 4->10 ReLU, 10->3 linear, same float weights
    theirs = load(fixture_file("nncase-iris", "iris.kmodel"))
    assert [L.type_name for L in ours.layers] == [L.type_name for L in theirs.layers] == ["FULLY_CONNECTED"] * 2
    for a, b in zip(ours.layers, theirs.layers):
        assert a.fields["act"] == b.fields["act"]
        assert np.array_equal(a.fields["weights"], b.fields["weights"])
        assert np.array_equal(a.fields["bias"], b.fields["bias"])
    capsys.readouterr()
    assert cli(["kmodel", "run", str(tmp_path / "iris.kmodel"), "--input", "5.1,3.8,1.9,0.4", "--json"]) == 0
    assert '"label": "setosa"' in capsys.readouterr().out


def _keras_tflite(tmp_path, layers, shape):
    import tensorflow as tf
    tf.keras.utils.set_random_seed(3)
    model = tf.keras.Sequential([tf.keras.Input(shape)] + layers)
    path = tmp_path / "m.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path


def test_a_float_vector_model_matches_litert(tmp_path):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter
    path = _keras_tflite(tmp_path, [tf.keras.layers.Dense(16, activation="relu6"),
                                    tf.keras.layers.Dense(8), tf.keras.layers.Dense(5, activation="softmax")], (6,))
    assert cli(["compile", str(path), "--out", str(tmp_path / "out"), "--name", "vec"]) == 0
    km = load(tmp_path / "out" / "vec.kmodel")
    assert [L.type_name for L in km.layers] == ["FULLY_CONNECTED"] * 3 + ["SOFTMAX"]
    it = Interpreter(model_content=path.read_bytes())
    it.allocate_tensors()
    x = np.random.default_rng(0).normal(0, 2, (20, 6)).astype(np.float32)
    for row in x:
        it.set_tensor(it.get_input_details()[0]["index"], row[None])
        it.invoke()
        want = it.get_tensor(it.get_output_details()[0]["index"]).reshape(-1)
        got = run(km, row)[0].reshape(-1)
        assert np.allclose(got, want, atol=1e-6), (got, want)


def test_a_float_image_model_without_dataset_is_refused_naming_the_option(tmp_path, capsys):
    """Float convs need the KPU's uint8 arithmetic, whose ranges come from calibration images."""
    import tensorflow as tf
    path = _keras_tflite(tmp_path, [tf.keras.layers.Conv2D(4, 3, padding="same"), tf.keras.layers.Flatten(),
                                    tf.keras.layers.Dense(2)], (8, 8, 1))
    assert cli(["compile", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "give compile --dataset DIR" in err and "[rule: calibration]" in err, err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_float_vector_model_with_an_op_the_runtime_lacks_is_refused(tmp_path, capsys):
    import tensorflow as tf
    path = _keras_tflite(tmp_path, [tf.keras.layers.Dense(4, activation="tanh")], (3,))
    assert cli(["compile", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "op TANH has no float kmodel V3 layer the stock runtime runs" in err and "[rule: op]" in err


# ---- float models with convolutions: KPU where possible, float CPU layers elsewhere ----

def _photos(folder, images):
    folder.mkdir(parents=True, exist_ok=True)
    for i, im in enumerate(images):
        Image.fromarray(im).save(folder / ("%03d.png" % i))
    return folder


def _litert_float(path, x_hwc_float):
    from ai_edge_litert.interpreter import Interpreter
    it = Interpreter(model_path=str(path))
    it.allocate_tensors()
    out = []
    for x in x_hwc_float:
        it.set_tensor(it.get_input_details()[0]["index"], x[None].astype(np.float32))
        it.invoke()
        out.append(it.get_tensor(it.get_output_details()[0]["index"]).reshape(-1))
    return np.array(out)


def _agreement(km, planar, ref):
    got = np.array([run(km, x)[0].reshape(-1) for x in planar])
    return got, float(np.abs(got - ref).max()), float((got.argmax(1) == ref.argmax(1)).mean())


def _patterns(n, size, seed):
    """Images of 3 classes a small conv net tells apart: a bright bar, horizontal, vertical or none, on noise."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 90, (n, size, size, 3)).astype(np.uint8)
    y = rng.integers(0, 3, n)
    for im, c in zip(x, y):
        p = rng.integers(2, size - 6)
        if c == 0:
            im[p:p + 4, 2:-2] += 140
        elif c == 1:
            im[2:-2, p:p + 4] += 140
    return x, y


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory):
    """A float tflite with what a K210 classifier holds (stride-2 conv, max pool, LeakyReLU op, depthwise conv,
    flatten, dense, softmax), trained here on _patterns, and its calibration photos."""
    import tensorflow as tf
    L = tf.keras.layers
    tmp = tmp_path_factory.mktemp("conv")
    tf.keras.utils.set_random_seed(5)
    model = tf.keras.Sequential([
        tf.keras.Input((24, 32, 3)),
        L.ZeroPadding2D(((1, 1), (1, 1))), L.Conv2D(8, 3, strides=2, activation="relu"),
        L.Conv2D(12, 3, padding="same"), L.LeakyReLU(0.1), L.MaxPooling2D(2),
        L.DepthwiseConv2D(3, padding="same", activation="relu6"), L.Conv2D(16, 1, activation="relu"),
        L.Flatten(), L.Dense(16, activation="relu"), L.Dense(3, activation="softmax")])
    x, y = _patterns(600, 32, 1)
    x = x[:, 4:28]                                   # 24 x 32, the camera's 4:3
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x / 255.0, y, epochs=8, batch_size=32, verbose=0)
    path = tmp / "conv_float.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    return path, _photos(tmp / "calib", x[:80]), model.evaluate(x / 255.0, y, verbose=0)[1]


def test_a_float_conv_model_runs_its_convs_on_the_kpu_and_matches_litert(conv_model, tmp_path, capsys):
    path, calib, train_acc = conv_model
    assert train_acc > 0.9, train_acc          # the model has learnt something to agree on
    assert cli(["compile", str(path), "--out", str(tmp_path / "out"), "--name", "conv", "--dataset",
                str(calib)]) == 0
    km = load(tmp_path / "out" / "conv.kmodel")
    kinds = [L.type_name for L in km.layers]
    assert kinds[0] == "K210_CONV" and kinds.count("K210_CONV") == 4, kinds
    # the convs' uint8 map becomes float once, the dense layers stay float32 with the tflite's own weights
    assert kinds[kinds.index("DEQUANTIZE"):] == ["DEQUANTIZE", "FULLY_CONNECTED", "FULLY_CONNECTED", "SOFTMAX"]
    assert km.output_typecodes == ["f"] and not km.input_is_float
    m = mf.load(tmp_path / "out" / "conv.json")
    assert m.input["format"] == "planar_u8" and m.outputs == [{"shape": [3, 1, 1], "type": "f"}]

    capsys.readouterr()
    assert cli(["kmodel", "info", str(tmp_path / "out" / "conv.kmodel")]) == 0
    info = capsys.readouterr().out
    runs = {}
    for ln in info.splitlines():
        if ln[:3].strip().isdigit():        # "  5  DEQUANTIZE      CPU u8->f32   ...": the "runs on" column
            runs.setdefault(ln[5:39].strip(), set()).add(ln[40:51].strip())
    assert runs["K210_CONV"] == {"KPU"} and runs["DEQUANTIZE"] == {"CPU u8->f32"}
    assert runs["FULLY_CONNECTED"] == runs["SOFTMAX"] == {"CPU f32"}

    x, _ = _patterns(120, 32, 2)
    photos = x[:, 4:28]
    planar = np.array([framing.photo_input(p, 32, 24, 3) for p in photos])
    ref = _litert_float(path, planar.transpose(0, 2, 3, 1) / 255.0)
    got, err, top1 = _agreement(km, planar, ref)
    print("conv model: max |kmodel - LiteRT float| %.4f, top-1 agreement %.3f on %d images" % (err, top1, len(x)))
    assert err <= 0.05 and top1 >= 0.99


def test_a_conv_after_a_float_cpu_layer_gets_its_bytes_from_a_quantize(tmp_path):
    """Global average pool (float, on the CPU), then a 1x1 conv on the KPU: QUANTIZE where the float vector meets
    the conv, DEQUANTIZE where its bytes become the float output."""
    import tensorflow as tf
    L = tf.keras.layers
    path = _keras_tflite(tmp_path, [L.Conv2D(8, 3, padding="same", activation="relu"), L.GlobalAveragePooling2D(),
                                    L.Reshape((1, 1, 8)), L.Conv2D(4, 1), L.Flatten()], (16, 16, 3))
    x = np.random.default_rng(4).integers(0, 256, (40, 16, 16, 3), dtype=np.uint8)
    compiled = compile_tflite(path, dataset=_photos(tmp_path / "calib", x[:20]))
    kinds = [L.type_name for L in compiled.kmodel.layers]
    assert kinds == ["K210_CONV", "DEQUANTIZE", "GLOBAL_AVERAGE_POOL2D", "QUANTIZE", "K210_ADD_PADDING", "K210_CONV",
                     "K210_REMOVE_PADDING", "DEQUANTIZE"], kinds
    planar = np.array([framing.photo_input(p, 16, 16, 3) for p in x[20:]])
    ref = _litert_float(path, planar.transpose(0, 2, 3, 1) / 255.0)
    _, err, top1 = _agreement(compiled.kmodel, planar, ref)
    spread = float(np.ptp(ref))
    print("gap + 1x1 conv: max |kmodel - LiteRT float| %.4f of outputs spanning %.4f, top-1 agreement %.3f"
          % (err, spread, top1))
    assert err <= 0.03 * spread and top1 >= 0.9, (err, spread, top1)


def test_digits_float_tflite_compiles_and_matches_litert_float(tmp_path, capsys):
    """The digits demo: `export tflite --float`, then `compile --dataset` on training digits printed as the camera
    sees them; the kmodel against LiteRT's float outputs on the validation digits (never used to calibrate)."""
    from host_tools.digits import load_digits
    from host_tools.pipeline import demo_digits
    from host_tools.pipeline.datasets import split_indices
    keras_model = ROOT / "models" / "digits.keras"
    assert keras_model.is_file(), "demo model missing (make models)"
    ftfl = tmp_path / "digits_float.tflite"
    assert cli(["export", "tflite", str(keras_model), "--float", "--out", str(ftfl)]) == 0
    images, labels = load_digits()
    tr, _ = split_indices(labels, 0.2, demo_digits.SEED)
    calib = _photos(tmp_path / "calib", list(demo_digits._sheets(images[tr[:100]], demo_digits.SEED + 1)))
    assert cli(["compile", str(ftfl), "--out", str(tmp_path / "out"), "--name", "digits_f", "--dataset",
                str(calib)]) == 0
    km = load(tmp_path / "out" / "digits_f.kmodel")
    kinds = [L.type_name for L in km.layers]
    assert kinds[0] == "K210_CONV" and "FULLY_CONNECTED" in kinds and kinds[-1] == "SOFTMAX", kinds

    x, y = demo_digits.validation_set()
    ref = _litert_float(ftfl, x / 255.0)
    got, err, top1 = _agreement(km, x.transpose(0, 3, 1, 2).copy(), ref)
    acc, ref_acc = float((got.argmax(1) == y).mean()), float((ref.argmax(1) == y).mean())
    print("digits float compile: max |kmodel - LiteRT float| %.4f, mean %.5f, top-1 agreement %.4f on %d "
          "validation digits; accuracy kmodel %.4f, LiteRT float %.4f"
          % (err, float(np.abs(got - ref).mean()), top1, len(x), acc, ref_acc))
    # measured: max 0.066, top-1 agreement 100 %, both 98.33 % accurate
    assert err <= 0.15 and top1 >= 0.99 and acc >= ref_acc - 0.01


def _refused(tmp_path, capsys, layers, shape, dataset=True):
    import tensorflow as tf
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = _keras_tflite(tmp_path, [getattr(tf.keras.layers, k)(*a, **kw) for k, a, kw in layers], shape)
    args = ["compile", str(path), "--out", str(tmp_path / "out")]
    if dataset:
        x = np.random.default_rng(3).integers(0, 256, (8,) + shape, dtype=np.uint8)
        args += ["--dataset", str(_photos(tmp_path / "calib", x))]
    capsys.readouterr()
    assert cli(args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("error: ")
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
    return err


def test_a_float_conv_neither_the_kpu_nor_a_v3_cpu_layer_runs_is_refused_naming_it(tmp_path, capsys):
    conv5 = [("Conv2D", (4, 3), dict(padding="same")), ("Conv2D", (4, 5), dict(padding="same")),
             ("Flatten", (), {}), ("Dense", (2,), {})]
    for dataset in (True, False):        # without --dataset, what it cannot run is said before the missing option
        err = _refused(tmp_path / str(dataset), capsys, conv5, (16, 16, 3), dataset)
        assert "layer 1 (CONV_2D): kernel 5x5; the KPU runs 1x1 and 3x3 (kmodel V3 has no float conv layer for " \
               "the CPU) [rule: kernel]" in err, err


def test_a_float_op_no_v3_layer_runs_is_refused_naming_it(tmp_path, capsys):
    err = _refused(tmp_path, capsys, [("Conv2D", (4, 3), dict(padding="same")), ("Flatten", (), {}),
                                      ("Dense", (4,), dict(activation="tanh"))], (8, 8, 3))
    assert "(TANH): op TANH has no kmodel V3 layer" in err and "[rule: op]" in err, err
    err = _refused(tmp_path / "relu", capsys, [("Conv2D", (4, 3), dict(padding="same")), ("Flatten", (), {}),
                                               ("Dense", (4,), {}), ("LeakyReLU", (0.2,), {})], (8, 8, 3))
    assert "(LEAKY_RELU): input tensor" in err and "kmodel V3 has no float LEAKY_RELU layer for the CPU" in err, err


def test_dataset_mistakes_are_one_line_errors(tmp_path, capsys, conv_model):
    path = conv_model[0]
    for args, want in (
            (["--dataset", str(tmp_path / "nope")], "--dataset %s: no such folder" % (tmp_path / "nope")),
            (["--dataset", str(tmp_path)], "--dataset %s: holds no images" % tmp_path)):
        capsys.readouterr()
        assert cli(["compile", str(path), "--out", str(tmp_path / "out")] + args) == 1
        err = capsys.readouterr().err
        assert want in err and "[rule: calibration]" in err and len(err.strip().splitlines()) == 1, err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_bytes(b"not a png")
    assert cli(["compile", str(path), "--out", str(tmp_path / "out"), "--dataset", str(tmp_path / "bad")]) == 1
    assert "x.png: cannot read image" in capsys.readouterr().err
    int8 = ROOT / "models" / "digits_int8.tflite"
    assert cli(["compile", str(int8), "--out", str(tmp_path / "out"), "--dataset", str(conv_model[1])]) == 1
    assert "calibration images are for a float image model; this one is quantized already" in \
        capsys.readouterr().err
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())
