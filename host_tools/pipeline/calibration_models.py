"""The models of the published Maix Bit timings (host_tools.k210.cost.PUBLISHED), written by our compiler.

- mobilenet_0.75_224: MobileNetV1 0.75 @ 224, 1000 classes; the same 35-layer list and layer sizes as the
  vendor's V3 file (MaixPy issue 469 prints its layer bodies: 1364, 1024, 2048, 1280, 5888 ... bytes).
- face_yolov2_320x240: the layer list of the face detector MaixPy and the Kendryte demos ship
  (kendryte-standalone-demo face_detect/detect.kmodel: 23 K210_CONV layers, 3x3 + 2x2 max pools, 1x1/3x3 dw,
  30-channel 15x20 output, then DEQUANTIZE); weights random, which does not change the time.
- yolov2_mobilenet_0.75_224: a reading of neucrack.com/p/313's "model x" (V3 YOLOv2, 224x224x3 in, 7x7x5x46 out,
  architecture not stated): the YOLOv2 Sipeed's trainer builds (sipeed/maix_train, train/detector: MobileNetV1
  alpha 0.75 body, one 1x1 conv to anchors x (5 + classes)), with 5 anchors and 41 classes.
- yolo20_fixture: nncase's 20-class YOLO demo file from the shared fixtures (not rebuilt), timed in MaixPy's
  demo loop on the virtual board (host_tools.sim.demo_loop) with ANCHORS below.
Weights are random: the cost model reads shapes only.
"""
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def _face_yolov2():
    import keras
    from keras import layers
    x = inp = keras.Input((240, 320, 3))
    x = layers.ReLU(6.0)(layers.Conv2D(16, 3, padding="same")(x))
    x = layers.MaxPooling2D(2)(x)
    # (pointwise filters, 2x2 max pool after it) after each 3x3 depthwise, as in detect.kmodel
    for filters, pool in ((32, True), (64, False), (64, True), (128, False), (128, True), (256, False),
                          (256, False), (256, False), (256, False), (256, False)):
        x = layers.ReLU(6.0)(layers.DepthwiseConv2D(3, padding="same")(x))
        x = layers.ReLU(6.0)(layers.Conv2D(filters, 1)(x))
        if pool:
            x = layers.MaxPooling2D(2)(x)
    x = layers.ReLU(6.0)(layers.DepthwiseConv2D(3, padding="same")(x))
    x = layers.Conv2D(30, 1)(x)
    return keras.Model(inp, x, name="face_yolov2")


def _yolov2_mobilenet():
    import keras
    from keras import layers
    from host_tools.pipeline.arch import mobilenet_features
    inp = keras.Input((224, 224, 3))
    x = layers.Conv2D(5 * (5 + 41), 1)(mobilenet_features(inp, 0.75))
    return keras.Model(inp, x, name="yolov2_mobilenet")


def _mobilenet():
    from host_tools.pipeline.arch import mobilenet_v1
    return mobilenet_v1(224, 0.75, classes=1000)


# the 20-class VOC YOLOv2 demo's anchors (maixpy-firmware-facts.md)
YOLO20_ANCHORS = (1.08, 1.19, 3.42, 4.41, 6.63, 11.38, 9.42, 5.11, 16.62, 10.52)
BUILDERS = {"mobilenet_0.75_224": _mobilenet, "face_yolov2_320x240": _face_yolov2,
            "yolov2_mobilenet_0.75_224": _yolov2_mobilenet}


def build(name: str, out_dir):
    """Compile the named calibration model into out_dir; the parsed kmodel."""
    from pathlib import Path
    import keras
    from host_tools.compiler import compile_tflite
    from host_tools.pipeline.quantize import to_int8_tflite
    keras.utils.set_random_seed(0)
    model = BUILDERS[name]()
    h, w = model.inputs[0].shape[1:3]
    path = Path(out_dir) / (name + ".tflite")
    path.write_bytes(to_int8_tflite(model, np.random.default_rng(0).random((4, h, w, 3), dtype=np.float32)))
    return compile_tflite(path).kmodel
