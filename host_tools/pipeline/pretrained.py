"""Pretrained MobileNetV1 weights for transfer learning (the seed tutorial's path).

`--weights imagenet`: Keras' own MobileNet ImageNet no-top file for the alpha and size, which Keras downloads once
and caches (~/.keras/models); `--weights FILE.h5`: such a file given by path. Either is loaded by layer name into
our K210-padded MobileNetV1 (arch.py), then the input scaling the weights were trained with (pixel / 127.5 - 1) is
folded into the first convolution, so the model still takes pixel / 255 and the int8 input stays the camera byte.
"""
from pathlib import Path

import numpy as np

from host_tools.pipeline.arch import ALPHAS, ArchError, load_imagenet_weights

IMAGENET_SIZES = (128, 160, 192, 224)     # the sizes Keras publishes MobileNet weights for
ALPHA_TEXT = {1.0: "1_0", 0.75: "7_5", 0.5: "5_0", 0.25: "2_5"}


class WeightsError(ValueError):
    """Pretrained weights that cannot be had or used; one line naming the file or the URL and why."""


def imagenet_file_name(alpha: float, size: int) -> str:
    """The no-top file Keras publishes for this alpha; no-top weights do not depend on the input size, so the
    nearest published size is used."""
    if alpha not in ALPHAS:
        raise WeightsError("--weights imagenet: alpha must be one of %s, got %r" % (ALPHAS, alpha))
    rows = min(IMAGENET_SIZES, key=lambda s: (abs(s - size), -s))
    return "mobilenet_%s_%d_tf_no_top.h5" % (ALPHA_TEXT[alpha], rows)


def imagenet_file(alpha: float, size: int, cache_dir=None) -> Path:
    """Path of Keras' MobileNet ImageNet no-top weight file, downloaded by Keras once and then read from its
    cache. Offline without a cached copy: WeightsError in one line."""
    from keras.src.applications.mobilenet import BASE_WEIGHT_PATH
    from keras.utils import get_file
    name = imagenet_file_name(alpha, size)
    try:
        return Path(get_file(name, BASE_WEIGHT_PATH + name, cache_subdir="models", cache_dir=cache_dir))
    except Exception as e:   # get_file wraps every network failure in a bare Exception
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise WeightsError("--weights imagenet: %s is not in Keras' cache and cannot be downloaded (%s); connect "
                           "once, or give the file with --weights PATH" % (name, reason)) from None


def fold_input_scaling(model, first="conv1", first_bn="conv1_bn"):
    """Make a net trained on x' = 2x - 1 (x = pixel / 255) take x itself: conv1(2x - 1) = conv1'(x) - S with
    conv1' = 2 * conv1 and S = the sum of each filter's weights, which the following BatchNorm's mean absorbs.
    Exact except at the zero-padded border, where the padding now stands for black (-1) instead of grey (0)."""
    conv, bn = model.get_layer(first), model.get_layer(first_bn)
    (kernel,) = conv.get_weights()
    gamma, beta, mean, var = bn.get_weights()
    conv.set_weights([kernel * 2.0])
    bn.set_weights([gamma, beta, mean + kernel.sum(axis=(0, 1, 2)), var])


def load(model, weights, alpha: float, size: int, cache_dir=None) -> list:
    """Load "imagenet" or a no-top .h5 path into our MobileNetV1 and fold the input scaling; returns the names of
    the layers loaded."""
    path = imagenet_file(alpha, size, cache_dir) if weights == "imagenet" else Path(weights)
    if not path.is_file():
        raise WeightsError("--weights %s: no such file (give a Keras MobileNet no-top .h5 such as "
                           "mobilenet_7_5_224_tf_no_top.h5, or imagenet)" % path)
    try:
        loaded = load_imagenet_weights(model, path)
    except (ArchError, OSError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        why = why[len(str(path)) + 2:] if why.startswith(str(path) + ": ") else why
        raise WeightsError("--weights %s: %s" % (path, why)) from None
    fold_input_scaling(model)
    return loaded


def imagenet_input(pixels_u8) -> np.ndarray:
    """The input Keras' MobileNet weights expect (keras.applications.mobilenet.preprocess_input): pixel/127.5 - 1."""
    return np.asarray(pixels_u8, np.float32) / 127.5 - 1.0
