"""K210-valid Keras architectures: MobileNetV1, the small CIFAR-style MobileNet, the TinyML slides' CIFAR-10 net
(`cifar_mobilenet`), and a YOLOv2 detector.

Valid by construction: 3x3 / 1x1 kernels only; stride-2 layers are ZeroPadding2D((1,1),(1,1)) + VALID, which is
exactly what the KPU computes (stride-1 conv with symmetric padding, then keep the top-left of each 2x2), unlike
Keras' own MobileNet whose ((0,1),(0,1)) padding / SAME at stride 2 samples the other phase. Only layers the
compiler lowers. The model's float input is pixel/255 RGB: there is no rescaling layer inside.
Layer names follow keras.applications.MobileNet so the standard no-top .h5 weight files load by name.
"""
import keras
from keras import layers

ALPHAS = (0.25, 0.5, 0.75, 1.0)
MOBILENET_MIN_SIZE, MOBILENET_MAX_SIZE = 96, 224
# (pointwise filters at alpha 1, stride) for the 13 depthwise blocks of MobileNetV1 (paper Table 1).
MOBILENET_BLOCKS = ((64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
                    (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1))
SMALL_WIDTHS = (24, 48, 96, 192)


class ArchError(ValueError):
    """An architecture argument outside what the K210 or the builder supports; the message names it."""


def _bn_relu6(x, name):
    x = layers.BatchNormalization(epsilon=1e-3, momentum=0.99, name=name + "_bn")(x)
    return layers.ReLU(6.0, name=name + "_relu")(x)


def _stride2_conv(x, filters, name, pad_name):
    x = layers.ZeroPadding2D(((1, 1), (1, 1)), name=pad_name)(x)
    return layers.Conv2D(filters, 3, strides=2, padding="valid", use_bias=False, name=name)(x)


def mobilenet_features(x, alpha=1.0, downsample="conv", blocks=13):
    """MobileNetV1 body on tensor x (conv1 + `blocks` depthwise blocks).

    downsample="conv": stride-2 layers as symmetric ZeroPadding2D + VALID (the paper's net, loads ImageNet
    weights). downsample="pool": stride-1 depthwise and a 2x2 max pool after the pointwise conv, which keeps
    floor(n/2) on odd sizes exactly as the KPU does (240 -> ... -> 15 -> 7), same weights, for detectors.
    """
    if alpha not in ALPHAS:
        raise ArchError("MobileNetV1: alpha must be one of %s, got %r" % (ALPHAS, alpha))
    if downsample not in ("conv", "pool"):
        raise ArchError("MobileNetV1: downsample must be 'conv' or 'pool', got %r" % downsample)
    x = _stride2_conv(x, int(32 * alpha), "conv1", "conv1_pad")
    x = _bn_relu6(x, "conv1")
    for i, (filters, stride) in enumerate(MOBILENET_BLOCKS[:blocks], start=1):
        if stride == 2 and downsample == "conv":
            x = layers.ZeroPadding2D(((1, 1), (1, 1)), name="conv_pad_%d" % i)(x)
            x = layers.DepthwiseConv2D(3, strides=2, padding="valid", use_bias=False, name="conv_dw_%d" % i)(x)
        else:
            x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name="conv_dw_%d" % i)(x)
        x = _bn_relu6(x, "conv_dw_%d" % i)
        x = layers.Conv2D(int(filters * alpha), 1, use_bias=False, name="conv_pw_%d" % i)(x)
        x = _bn_relu6(x, "conv_pw_%d" % i)
        if stride == 2 and downsample == "pool":
            x = layers.MaxPooling2D(2, name="conv_pool_%d" % i)(x)
    return x


def mobilenet_v1(input_size=224, alpha=1.0, classes=1000, include_top=True, dropout=1e-3, name=None):
    """MobileNetV1 (Howard et al. 2017) for the K210. input_size: int or (h, w), each 96..224."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    for side in (h, w):
        if not MOBILENET_MIN_SIZE <= side <= MOBILENET_MAX_SIZE:
            raise ArchError("MobileNetV1: input size must be %d..%d, got %dx%d"
                            % (MOBILENET_MIN_SIZE, MOBILENET_MAX_SIZE, w, h))
    inputs = keras.Input((h, w, 3), name="input")
    x = mobilenet_features(inputs, alpha)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    if include_top:
        x = layers.Dropout(dropout, name="dropout")(x)
        x = layers.Dense(classes, name="predictions")(x)
        x = layers.Softmax(name="softmax")(x)
    return keras.Model(inputs, x, name=name or "mobilenet_%g_%d" % (alpha, h))


def _separable_block(x, filters, name, pool=True):
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, name=name + "_dw")(x)
    x = _bn_relu6(x, name + "_dw")
    x = layers.Conv2D(filters, 1, use_bias=False, name=name + "_pw")(x)
    x = _bn_relu6(x, name + "_pw")
    if pool:
        x = layers.MaxPooling2D(2, name=name + "_pool")(x)
    return x


def small_features(x, widths=SMALL_WIDTHS, stem=16, stem_stride2=False, extra=()):
    """Conv `stem` (stride 2 when asked) then one separable block per width, each followed by a 2x2 max pool;
    `extra` blocks unpooled."""
    if stem_stride2:
        x = _stride2_conv(x, stem, "stem", "stem_pad")
    else:
        x = layers.Conv2D(stem, 3, padding="same", use_bias=False, name="stem")(x)
    x = _bn_relu6(x, "stem")
    for i, f in enumerate(widths, start=1):
        x = _separable_block(x, f, "block%d" % i)
    for j, f in enumerate(extra, start=len(widths) + 1):
        x = _separable_block(x, f, "block%d" % j, pool=False)
    return x


def small_mobilenet(input_size=64, classes=10, widths=SMALL_WIDTHS, dropout=0.2, name="small_mobilenet"):
    """The CIFAR-style MobileNet: Conv 16, separable blocks 24/48/96/192 with max pools, Dense, Softmax."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    if min(h, w) < 2 ** len(widths) or max(h, w) > 320 or min(h, w) > 240:
        raise ArchError("small MobileNet: input %dx%d must be at least %d and within 320x240"
                        % (w, h, 2 ** len(widths)))
    inputs = keras.Input((h, w, 3), name="input")
    x = small_features(inputs, widths)
    x = layers.GlobalAveragePooling2D(name="global_pool")(x)
    x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Dense(classes, name="predictions")(x)
    x = layers.Softmax(name="softmax")(x)
    return keras.Model(inputs, x, name=name)


CIFAR_WIDTHS = ((24, True), (48, True), (96, False), (192, True))   # (pointwise filters, max pool after)


def _conv_bn_relu(x, layer, name):
    x = layer(x)
    x = layers.BatchNormalization(name=name + "_bn")(x)
    return layers.ReLU(name=name + "_relu")(x)


def cifar_mobilenet(input_size=32, classes=10, name="cifar_mobilenet"):
    """The TinyML slides' CIFAR-10 net, layer for layer: Conv 16, depthwise-separable blocks 24/48/96/192 with max
    pools after 24, 48 and 192, Flatten, Dropout 0.2, Dense; every conv with its bias, BatchNorm and ReLU. 60,194
    parameters at 32x32 with 10 classes. The final Softmax (no parameters) is ours: the pipeline reads
    probabilities."""
    h, w = (input_size, input_size) if isinstance(input_size, int) else input_size
    if min(h, w) < 8 or max(h, w) > 320 or min(h, w) > 240:
        raise ArchError("cifar-mobilenet: input %dx%d must be at least 8 and within 320x240" % (w, h))
    inputs = keras.Input((h, w, 3), name="input")
    x = _conv_bn_relu(inputs, layers.Conv2D(16, 3, padding="same", name="stem"), "stem")
    for i, (filters, pool) in enumerate(CIFAR_WIDTHS, start=1):
        x = _conv_bn_relu(x, layers.DepthwiseConv2D(3, padding="same", name="block%d_dw" % i), "block%d_dw" % i)
        x = _conv_bn_relu(x, layers.Conv2D(filters, 1, name="block%d_pw" % i), "block%d_pw" % i)
        if pool:
            x = layers.MaxPooling2D(2, name="block%d_pool" % i)(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    x = layers.Dense(classes, name="predictions")(x)
    x = layers.Softmax(name="softmax")(x)
    return keras.Model(inputs, x, name=name)


HEAD_LAYERS = ("global_pool", "flatten", "dropout", "predictions", "softmax")


def base_layers(model) -> list:
    """The feature extractor's weighted layers (all but the classifier head): what transfer learning freezes."""
    return [L for L in model.layers if L.name not in HEAD_LAYERS and L.weights]


def yolo_v2(anchors, classes=1, input_size=(240, 320), backbone="small", alpha=0.25, name="yolo"):
    """YOLOv2 detector: MobileNet-style backbone at stride 32, then a 1x1 conv giving, per cell,
    anchor-major (tx, ty, tw, th, objectness, class logits...) for each anchor, as the firmware's region layer
    reads it. input_size (h, w); (None, None) makes a size-agnostic model for training on crops.

    backbone "small": stem 8 at stride 2, separable 24/48/96/192 with pools, then 2 separable 256 (light, demos);
    "mobilenet": MobileNetV1 at `alpha` with pooled downsampling (floor on odd sizes, like the KPU).
    """
    if len(anchors) != 10:
        raise ArchError("YOLOv2: MaixPy's run_yolo2 assumes 5 anchors (it takes classes = C/5 - 5): give 10 "
                        "numbers (w, h pairs in grid cells), got %d" % len(anchors))
    if classes < 1:
        raise ArchError("YOLOv2: classes must be >= 1, got %r" % classes)
    h, w = input_size
    inputs = keras.Input((h, w, 3), name="input")
    if backbone == "small":
        x = small_features(inputs, SMALL_WIDTHS, stem=8, stem_stride2=True, extra=(256, 256))
    elif backbone == "mobilenet":
        x = mobilenet_features(inputs, alpha, downsample="pool")
    else:
        raise ArchError("YOLOv2: backbone must be 'small' or 'mobilenet', got %r" % backbone)
    n = len(anchors) // 2
    x = layers.Conv2D(n * (5 + classes), 1, name="region")(x)
    return keras.Model(inputs, x, name=name)


def load_imagenet_weights(model, path):
    """Load a Keras MobileNet weight file (legacy .h5 as keras.applications ships them) by layer name.

    Every weighted layer in the file must exist in `model` with the same shapes; a file that matches nothing is
    an error, never a silent no-op.
    """
    import h5py
    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in group.attrs:
            raise ArchError("%s: not a Keras legacy .h5 weight file (no 'layer_names')" % path)
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["layer_names"]]
        weighted = [n for n in names if len(group[n].attrs.get("weight_names", [])) > 0]
    ours = {l.name for l in model.layers}
    missing = [n for n in weighted if n not in ours]
    if not weighted or missing:
        raise ArchError("%s: weighted layer(s) not in model %s: %s" % (path, model.name, ", ".join(missing[:8])
                                                                         or "(file has no weights)"))
    try:
        model.load_weights(str(path), by_name=True)
    except ValueError as e:
        raise ArchError("%s: %s" % (path, e)) from None
    return weighted
