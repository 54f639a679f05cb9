"""The K210 checker: every layer of a Keras model or an int8 tflite that breaks a KPU / stock-runtime rule, and
the memory the model needs against the full and minimum MaixPy firmware budgets, with advice.

Both front ends reduce the model to the same `Layer` list, so each rule is written once. Layer index is the
Keras `model.layers` index or the tflite operator index (-1 for a tflite's input); name is the Keras layer
name or the tflite output tensor name. Memory figures are estimates before compiling (`kmodel info` gives the exact ones after).
"""
from dataclasses import dataclass, field

from host_tools.k210.firmware import FLASH_LAYER_LIMIT, model_budget
from host_tools.k210.kpu import RAM_BYTES as KPU_RAM_BYTES, ROW_BYTES as KPU_ROW_BYTES, WeightLoadError
from host_tools.k210.kpu import ram_rows as kpu_ram_rows, weight_loads

# Rule ids: what each finding's `rule` holds and the tests match.
KERNEL = "kernel"            # KPU convolutions are 1x1 or 3x3
STRIDE = "stride"            # 1 or 2, same in both directions
PADDING = "asymmetric-padding"  # the KPU pads 1 on every side; SAME at stride 2 pads bottom/right only
ODD_SIZE = "odd-size-stride2"   # the KPU keeps floor(n/2) at stride 2, Keras ceil(n/2) on odd n
PRELU = "prelu"              # no PReLU on the KPU or in the stock runtime
INPUT = "input-size"         # the camera / KPU input is at most 320x240
CHANNELS = "channels"        # the KPU takes at most 1024 channels
KPU_RAM = "kpu-ram"          # a layer's input + output feature maps must fit the 2 MiB KPU RAM
OP = "unsupported-op"        # ops the stock runtime (and our compiler) lack
POOL = "pool"                # KPU pools: 2x2 stride 2, 4x4 stride 4, 2x2 stride 1
ACTIVATION = "activation"    # activation tables: linear, relu, relu6, leaky relu
RULES = (KERNEL, STRIDE, PADDING, ODD_SIZE, PRELU, INPUT, CHANNELS, KPU_RAM, OP, POOL, ACTIVATION)

MAX_INPUT_W, MAX_INPUT_H, MIN_SIDE, MAX_CHANNELS = 320, 240, 4, 1024
KPU_POOLS = {(2, 2), (4, 4), (2, 1)}            # (window, stride) the KPU fuses into a conv layer
KPU_ACTIVATIONS = ("linear", "relu", "relu6", "leaky")
# Bytes a compiled layer carries besides its weights: registers, BN table (per channel), activation table,
# plus worst-case alignment of weights/BN (128) and the table (256) inside the body (kmodel-v3-facts.md).
CONV_OVERHEAD = 96 + 144 + 128 + 128 + 256
BN_BYTES = 8
KMODEL_HEADER = 64


@dataclass
class Layer:
    index: int
    name: str
    op: str                  # conv depthwise pool pad act prelu gap dense softmax reshape concat noop input other
    in_shape: tuple = ()     # (h, w, c) for maps, (n,) for vectors
    out_shape: tuple = ()
    kernel: tuple = None     # (kh, kw)
    stride: tuple = None     # (sh, sw)
    padding: str = None      # "same" | "valid"
    pads: tuple = None       # pad layer: ((top, bottom), (left, right)); conv: the pad layer feeding it
    pad_name: str = None     # name of that pad layer
    pool: str = None         # "max" | "avg" | "global_max" for pools
    activation: str = None   # act layers and fused activations
    kind: str = ""           # the framework's own name for the op, for messages


@dataclass
class Finding:
    index: int
    name: str
    rule: str
    message: str

    def __str__(self):
        where = "input %s" % self.name if self.index < 0 else "layer %d %s" % (self.index, self.name)
        return "%s: [%s] %s" % (where, self.rule, self.message)


@dataclass
class Memory:
    kpu_ram_peak: int = 0        # bytes of KPU RAM the biggest conv layer needs (input + output)
    kpu_ram_layer: str = ""
    weights: int = 0             # bytes of compiled layer bodies (the kmodel file, about)
    largest_layer: int = 0       # biggest single layer body (kpu.load_flash limit)
    main_mem: int = 0            # CPU-side buffers the runtime allocates
    heap: int = 0                # system heap kpu.load from RAM needs: the kmodel plus main memory
    budgets: dict = field(default_factory=dict)   # firmware -> bytes available for a model
    fits: dict = field(default_factory=dict)      # firmware -> bool


@dataclass
class Report:
    source: str
    layers: list
    findings: list
    memory: Memory
    advice: list

    @property
    def ok(self) -> bool:
        """No rule broken and the model loads from RAM with at least one firmware build (else load_flash)."""
        return not self.findings

    def rules(self):
        return sorted({f.rule for f in self.findings})

    def text(self) -> str:
        m = self.memory
        lines = ["%s: %d layers, %s" % (self.source, len(self.layers),
                                        "K210 rules OK" if not self.findings else "%d problem(s)" % len(self.findings))]
        lines += ["  " + str(f) for f in self.findings]
        lines.append("memory (estimate): weights %s, largest layer %s, main memory %s, KPU RAM peak %s (%s), "
                     "kpu.load heap %s" % (_kib(m.weights), _kib(m.largest_layer), _kib(m.main_mem),
                                           _kib(m.kpu_ram_peak), m.kpu_ram_layer or "-", _kib(m.heap)))
        for fw in m.budgets:
            lines.append("  %-7s firmware: %s of %s -> %s" % (fw, _kib(m.heap), _kib(m.budgets[fw]),
                                                             "fits" if m.fits[fw] else "does NOT fit"))
        lines += ["advice: " + a for a in self.advice]
        return "\n".join(lines)


def _kib(n):
    return "%.1f KiB" % (n / 1024)


# ---------------------------------------------------------------- rules, on the common Layer list

def _find(layer, rule, msg):
    return Finding(layer.index, layer.name, rule, msg)


def _check_layer(l: Layer):
    out = []
    if l.op == "input":
        shape = l.out_shape
        if len(shape) == 3:
            h, w, c = shape
            if w is None or h is None:
                out.append(_find(l, INPUT, "input size is not fixed (%sx%s): build the model at its inference "
                                           "size, at most %dx%d" % (w, h, MAX_INPUT_W, MAX_INPUT_H)))
            elif w > MAX_INPUT_W or h > MAX_INPUT_H or min(w, h) < MIN_SIDE:
                out.append(_find(l, INPUT, "input %dx%d is outside %dx%d..%dx%d (the camera frame and the KPU "
                                           "input limit)" % (w, h, MIN_SIDE, MIN_SIDE, MAX_INPUT_W, MAX_INPUT_H)))
    for shape in (l.in_shape, l.out_shape):
        if len(shape) == 3 and shape[2] is not None and shape[2] > MAX_CHANNELS and l.op in ("conv", "depthwise"):
            out.append(_find(l, CHANNELS, "%d channels, the KPU takes at most %d" % (shape[2], MAX_CHANNELS)))
            break
    if l.op in ("conv", "depthwise"):
        kh, kw = l.kernel
        if (kh, kw) not in ((1, 1), (3, 3)):
            out.append(_find(l, KERNEL, "kernel %dx%d, the KPU runs only 1x1 and 3x3" % (kh, kw)))
        sh, sw = l.stride
        if sh != sw or sh not in (1, 2):
            out.append(_find(l, STRIDE, "stride %dx%d, the KPU runs stride 1 or 2 (same both ways)" % (sh, sw)))
        elif sh == 2 and (kh, kw) == (3, 3):
            out += _stride2_padding(l)
        if l.activation is not None and l.activation not in KPU_ACTIVATIONS:
            out.append(_find(l, ACTIVATION, "fused activation %r; the KPU activation table does %s"
                             % (l.activation, ", ".join(KPU_ACTIVATIONS))))
    elif l.op == "prelu":
        out.append(_find(l, PRELU, "PReLU has no KPU activation table nor a stock runtime layer; use ReLU or "
                                   "LeakyReLU"))
    elif l.op == "pool":
        if l.pool == "global_max":
            out.append(_find(l, OP, "global max pooling: the stock MaixPy runtime lacks GLOBAL_MAX_POOL2D; use "
                                    "GlobalAveragePooling2D"))
        else:
            win, st = l.kernel, l.stride
            if win[0] != win[1] or st[0] != st[1] or (win[0], st[0]) not in KPU_POOLS or l.padding == "same" \
                    and st[0] > 1 and any(s % st[0] for s in l.in_shape[:2]):
                out.append(_find(l, POOL, "%s pool %dx%d stride %d%s; the KPU fuses only 2x2 stride 2, 4x4 stride "
                                          "4 and 2x2 stride 1 into a conv" % (l.pool, win[0], win[1], st[0],
                                                                               " (padded)" if l.padding == "same"
                                                                               and st[0] > 1 else "")))
    elif l.op == "act":
        if l.activation not in KPU_ACTIVATIONS + ("softmax",):
            out.append(_find(l, ACTIVATION, "activation %r; the KPU activation table does %s (softmax on the CPU "
                                            "at the end)" % (l.activation, ", ".join(KPU_ACTIVATIONS))))
    elif l.op == "other":
        out.append(_find(l, OP, "%s: no lowering for the stock MaixPy runtime (supported: Conv2D, "
                                "DepthwiseConv2D, BatchNormalization, ReLU/ReLU6/LeakyReLU, MaxPool/AvgPool, "
                                "ZeroPadding2D, GlobalAveragePooling2D, Flatten/Reshape, Dense, Softmax, "
                                "Concatenate)" % l.kind))
    return out


def _stride2_padding(l: Layer):
    """A 3x3 stride-2 layer must see exactly 1 pixel of padding on every side (what the KPU does)."""
    h, w = l.in_shape[:2] if len(l.in_shape) == 3 else (None, None)
    if l.padding == "same":
        if h is None or w is None:
            return [_find(l, PADDING, "SAME padding at stride 2 on an unsized input: TensorFlow pads bottom/right "
                                      "only on even sizes; use ZeroPadding2D((1,1),(1,1)) + VALID")]
        if h % 2 == 0 or w % 2 == 0:
            return [_find(l, PADDING, "SAME padding at stride 2 on %dx%d pads only bottom/right (asymmetric); the "
                                      "KPU pads 1 on every side: use ZeroPadding2D((1,1),(1,1)) + VALID" % (w, h))]
        return [_find(l, ODD_SIZE, "stride 2 on odd size %dx%d: Keras gives ceil(n/2), the KPU floor(n/2); "
                                   "use a 2x2 max pool or an even input" % (w, h))]
    pads = l.pads or ((0, 0), (0, 0))
    if pads != ((1, 1), (1, 1)):
        src = ("%s pads %s" % (l.pad_name, pads)) if l.pad_name else "no zero padding in front"
        return [_find(l, PADDING, "VALID at stride 2 with %s; the KPU pads 1 on every side: use "
                                  "ZeroPadding2D((1,1),(1,1)) + VALID" % src)]
    if h is not None and w is not None and (h % 2 or w % 2):  # padded size has the parity of the original
        return [_find(l, ODD_SIZE, "stride 2 on odd size %dx%d: Keras gives ceil(n/2), the KPU floor(n/2); "
                                   "use a 2x2 max pool or an even input" % (w - 2, h - 2))]
    return []


def _conv_cost(l: Layer):
    """(layer body bytes, KPU RAM bytes) for one conv layer compiled to int8 K210_CONV."""
    kh, _ = l.kernel
    ic, oc = l.in_shape[2], l.out_shape[2]
    dw = l.op == "depthwise"
    wbytes = kh * kh * (oc if dw else ic * oc)
    try:
        weight_loads(kh, ic, oc, dw)
    except WeightLoadError:
        pass  # reported as a kernel/channel problem; the estimate still counts the bytes
    h, w = l.in_shape[:2]
    if l.pads:  # the KPU holds the unpadded map; the padding is its own
        h, w = h - sum(l.pads[0]), w - sum(l.pads[1])
    oh, ow = l.out_shape[:2]
    ram = (kpu_ram_rows(ic, h, w) + kpu_ram_rows(oc, oh, ow)) * KPU_ROW_BYTES
    return wbytes + BN_BYTES * oc + CONV_OVERHEAD, ram


def _numel(shape):
    n = 1
    for s in shape:
        n *= s
    return n


def memory(layers, firmware=("full", "minimum")) -> Memory:
    m = Memory()
    cpu_buffers = []
    for l in layers:
        if None in l.in_shape or None in l.out_shape:
            continue
        if l.op in ("conv", "depthwise") and len(l.in_shape) == 3:
            body, ram = _conv_cost(l)
            if ram > m.kpu_ram_peak:
                m.kpu_ram_peak, m.kpu_ram_layer = ram, l.name
        elif l.op == "dense":
            n_in, n_out = _numel(l.in_shape), _numel(l.out_shape)
            if n_in <= MAX_CHANNELS and n_out <= MAX_CHANNELS:   # the compiler puts it on the KPU as a 1x1 conv
                body = n_in * n_out + BN_BYTES * n_out + CONV_OVERHEAD
            else:                                               # float FULLY_CONNECTED on the CPU
                body = 4 * (n_in + 1) * n_out + 32
            cpu_buffers.append(4 * (n_in + n_out))
        elif l.op in ("gap", "softmax", "reshape", "concat"):  # CPU layers; KPU pools are fused into the conv
            body = 64
            cpu_buffers.append(4 * (_numel(l.in_shape) + _numel(l.out_shape)))
        else:
            continue
        m.weights += body
        m.largest_layer = max(m.largest_layer, body)
    if layers and layers[-1].out_shape and None not in layers[-1].out_shape:
        cpu_buffers.append(4 * _numel(layers[-1].out_shape))
    m.weights += KMODEL_HEADER
    m.main_mem = max(cpu_buffers, default=0)
    m.heap = m.weights + m.main_mem
    for fw in firmware:
        m.budgets[fw] = model_budget(fw)
        m.fits[fw] = m.heap <= m.budgets[fw]
    return m


def advice(mem: Memory, findings) -> list:
    out = []
    if findings:
        out.append("fix the %d layer(s) above before training: the compiler refuses them" % len({f.index for f in
                                                                                                   findings}))
    full, mini = mem.budgets.get("full"), mem.budgets.get("minimum")
    if mem.fits.get("full"):
        out.append("fits the full firmware (kpu.load from RAM, %s spare)" % _kib(full - mem.heap))
    elif mem.fits.get("minimum"):
        out.append("too big for the full firmware (%s over): flash the minimum firmware build (%s spare) or "
                   "load it with kpu.load_flash" % (_kib(mem.heap - full), _kib(mini - mem.heap)))
    else:
        if mem.largest_layer < FLASH_LAYER_LIMIT:
            out.append("too big for kpu.load on either firmware: store it big-endian in flash and use "
                       "kpu.load_flash (every layer is below 2 MiB)")
        else:
            out.append("a layer needs %s: too big even for kpu.load_flash (each layer < 2 MiB)"
                       % _kib(mem.largest_layer))
        ratio = (full / mem.heap) ** 0.5
        out.append("or shrink it: weights scale with width squared, so width x%.2f (e.g. a smaller MobileNet "
                   "alpha) fits the full firmware" % ratio)
    if mem.kpu_ram_peak > KPU_RAM_BYTES:
        out.append("reduce the input size or the channels of %s: its feature maps need %s of the 2048 KiB KPU RAM"
                   % (mem.kpu_ram_layer, _kib(mem.kpu_ram_peak)))
    return out


def check_layers(source, layers) -> Report:
    findings = []
    for l in layers:
        findings += _check_layer(l)
    mem = memory(layers)
    for l in layers:
        if l.op in ("conv", "depthwise") and len(l.in_shape) == 3 and None not in l.in_shape + l.out_shape:
            _, ram = _conv_cost(l)
            if ram > KPU_RAM_BYTES:
                findings.append(_find(l, KPU_RAM, "input + output feature maps need %s of KPU RAM, above the "
                                                  "2048 KiB" % _kib(ram)))
    findings.sort(key=lambda f: (f.index, f.rule))
    return Report(source, layers, findings, mem, advice(mem, findings))


# ---------------------------------------------------------------- front ends

def check_keras(model) -> Report:
    from host_tools.pipeline.keras_layers import layers_of
    return check_layers(model.name, layers_of(model))


def check_tflite(data, source="<tflite>") -> Report:
    from host_tools.pipeline.tflite_layers import layers_of
    return check_layers(source, layers_of(data, source))


def check_file(path) -> Report:
    """A .tflite, .keras or .h5 model file."""
    from pathlib import Path
    path = Path(path)
    if path.suffix == ".tflite":
        return check_tflite(path.read_bytes(), str(path))
    if path.suffix in (".keras", ".h5"):
        import keras
        try:
            model = keras.models.load_model(path, compile=False)
        except Exception as e:  # keras raises many types for a bad file; name the file
            raise ValueError("%s: cannot load Keras model: %s" % (path, e)) from None
        rep = check_keras(model)
        rep.source = str(path)
        return rep
    raise ValueError("%s: expected a .tflite, .keras or .h5 model file" % path)
