"""Fully-integer int8 tflite from a Keras model and a representative dataset; float vs int8 evaluation (LiteRT).

The input tensor must come out with scale 1/255 and zero point -128: then the int8 input is the camera byte
minus 128 and the kmodel input is exactly the camera's planar uint8. Anything else is an error.
"""
from pathlib import Path

import numpy as np

from host_tools.pipeline import quiet

INPUT_SCALE, INPUT_ZERO_POINT = 1.0 / 255.0, -128


class QuantizeError(ValueError):
    """Conversion or calibration that cannot give a K210-ready int8 model; the message says why."""


def representative(x_float, count=200, seed=0):
    """Calibration samples drawn from the training inputs, plus one frame holding both 0 and 1 so the input range
    is exactly [0, 1] (scale 1/255, zero point -128) whatever the sampled images contain."""
    x_float = np.asarray(x_float, dtype=np.float32)
    if len(x_float) == 0:
        raise QuantizeError("representative dataset is empty: give at least one training image")
    rng = np.random.default_rng(seed)
    idx = rng.choice(len(x_float), size=min(count, len(x_float)), replace=False)
    span = x_float[idx[0]].copy()
    span.reshape(-1)[0], span.reshape(-1)[1] = 0.0, 1.0
    return np.concatenate([span[None], x_float[idx]], axis=0)


def to_int8_tflite(model, calibration, method=None) -> bytes:
    """Convert a Keras model to a fully-integer tflite (int8 in and out) calibrated on `calibration` (float);
    `method`: the activation ranges, a calibration.Calibration (default: calibration.DEFAULT)."""
    import tensorflow as tf

    from host_tools.pipeline import calibration as ranges
    calibration = np.asarray(calibration, dtype=np.float32)
    fixed = list(model.inputs[0].shape[1:])
    if None in fixed:
        raise QuantizeError("model %s has an unsized input %s: build it at the inference size before converting"
                            % (model.name, tuple(model.inputs[0].shape)))

    def gen():
        for x in calibration:
            yield [x[None]]

    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = gen
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    try:
        with quiet.hushed():
            data = ranges.convert(conv, calibration, method or ranges.Calibration())
    except ranges.CalibrationError:
        raise
    except Exception as e:  # the converter raises many types; name the model and keep its message
        raise QuantizeError("model %s: int8 conversion failed: %s" % (model.name, e)) from None
    scale, zp = input_quantization(data)
    if abs(scale - INPUT_SCALE) > 1e-6 or zp != INPUT_ZERO_POINT:
        raise QuantizeError("model %s: int8 input has scale %g zero point %d, expected 1/255 and -128 (the "
                            "calibration data must span exactly [0, 1])" % (model.name, scale, zp))
    return data


def _interpreter(tflite_bytes, **kw):
    from ai_edge_litert.interpreter import Interpreter
    with quiet.hushed():
        it = Interpreter(model_content=bytes(tflite_bytes), **kw)
        it.allocate_tensors()
    return it


def input_quantization(tflite_bytes):
    d = _interpreter(tflite_bytes).get_input_details()[0]
    scale, zp = d["quantization"]
    return float(scale), int(zp)


def litert_int8(tflite, images_u8, resolver=None):
    """Run an int8 tflite (bytes or path) on uint8 HWC images fed as byte - 128, one thread.

    Returns (dequantized float32 outputs (N, ...), output scale). `resolver`: a LiteRT OpResolverType
    (default AUTO, i.e. with XNNPACK).
    """
    from ai_edge_litert.interpreter import OpResolverType
    content = Path(tflite).read_bytes() if isinstance(tflite, (str, Path)) else bytes(tflite)
    it = _interpreter(content, num_threads=1, experimental_op_resolver_type=resolver or OpResolverType.AUTO)
    inp, out = it.get_input_details()[0], it.get_output_details()[0]
    oscale, ozp = out["quantization"]
    results = []
    for img in np.asarray(images_u8):
        it.set_tensor(inp["index"], (img.astype(np.int16) - 128).astype(np.int8)[None])
        it.invoke()
        results.append((it.get_tensor(out["index"])[0].astype(np.float32) - ozp) * oscale)
    return np.stack(results), float(oscale)


def run_int8(tflite, images_u8):
    """Dequantized float outputs (N, ...) of the int8 tflite on uint8 HWC images."""
    return litert_int8(tflite, images_u8)[0]


def classifier_report(keras_model, tflite_bytes, x_val_u8, y_val):
    """Validation accuracy of the float Keras model and of the int8 tflite on the same images."""
    from host_tools.pipeline.train import to_input
    p_float = keras_model.predict(to_input(x_val_u8), verbose=0, batch_size=128)
    p_int8 = run_int8(tflite_bytes, x_val_u8)
    y_val = np.asarray(y_val)
    return {
        "val_images": int(len(y_val)),
        "float_accuracy": float((p_float.argmax(1) == y_val).mean()),
        "int8_accuracy": float((p_int8.argmax(1) == y_val).mean()),
        "top1_agreement": float((p_float.argmax(1) == p_int8.argmax(1)).mean()),
        "max_prob_diff": float(np.abs(p_float - p_int8).max()),
    }, p_float, p_int8
