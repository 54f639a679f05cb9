"""compile of a float tflite, as ncc's --inference-type float: float FULLY_CONNECTED layers on the CPU. nncase's
iris example gives its printed numbers; a small Keras vector model matches LiteRT; a float conv is refused."""
import numpy as np
import pytest

from conftest import fixture_file
from host_tools import manifest as mf
from host_tools.__main__ import main as cli
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


def test_a_float_image_model_is_refused_as_before(tmp_path, capsys):
    """Float convs need the KPU's uint8 arithmetic: an image model still has to be quantized first."""
    import tensorflow as tf
    path = _keras_tflite(tmp_path, [tf.keras.layers.Conv2D(4, 3), tf.keras.layers.Flatten(),
                                    tf.keras.layers.Dense(2)], (8, 8, 1))
    assert cli(["compile", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "is float32; the camera byte is the int8 input + 128 (quantize with inference_input_type=int8)" in err
    assert "[rule: input-quant]" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").iterdir())


def test_a_float_vector_model_with_an_op_the_runtime_lacks_is_refused(tmp_path, capsys):
    import tensorflow as tf
    path = _keras_tflite(tmp_path, [tf.keras.layers.Dense(4, activation="tanh")], (3,))
    assert cli(["compile", str(path), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "op TANH has no float kmodel V3 layer the stock runtime runs" in err and "[rule: op]" in err
