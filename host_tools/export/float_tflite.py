"""A float32 tflite of a Keras model: what TFLite (or TFLite Micro with float kernels) runs without quantization,
and what a converter that calibrates on its own (ncc's --inference-type float, ...) takes."""
from pathlib import Path

from host_tools.export.tflm import ExportError


def to_float_tflite(model) -> bytes:
    import tensorflow as tf

    from host_tools.pipeline import quiet
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    try:
        with quiet.hushed():
            return conv.convert()
    except Exception as e:  # the converter raises many types; name the model and keep its message
        raise ExportError("model %s: float tflite conversion failed: %s" % (model.name, e)) from None


def export_file(keras_path, out=None) -> tuple:
    """<model>_float.tflite beside the .keras/.h5 (or `out`); returns (path, bytes written)."""
    import keras

    from host_tools.files import write_atomic
    src = Path(keras_path)
    if src.suffix.lower() not in (".keras", ".h5"):
        raise ExportError("%s: expected a Keras model (.keras or .h5)" % src)
    if not src.is_file():
        raise FileNotFoundError(2, "No such file or directory", str(src))
    try:
        model = keras.models.load_model(src, compile=False)
    except Exception as e:     # keras raises ValueError, OSError, ... for a file that is not a model
        raise ExportError("%s: not a Keras model: %s" % (src, str(e).splitlines()[0] if str(e) else e)) from None
    data = to_float_tflite(model)
    path = write_atomic(Path(out) if out else src.with_name(src.stem + "_float.tflite"), data)
    return path, len(data)
