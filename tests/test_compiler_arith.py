"""One integer model: the compiler's prediction of each conv layer (k210.arith on the numbers it writes) against
the emulator running the written kmodel, exactly; every compiled layer inside the vendor envelope; and, measured
apart, where the KPU's one rounding and TFLite's differ.

The random-layer corpus: lowered conv layers (ir.ConvLayer) with random shapes, kernels, pools, zero points,
scales, biases and output stages (linear, ReLU, ReLU6 clamps, LeakyReLU after the conv), each written as a
one-layer kmodel."""
import numpy as np
import pytest

from host_tools.compiler import emit, ir, planner
from host_tools.compiler.kpu_layer import layer_arith
from host_tools.k210 import arith as K
from host_tools.k210 import envelope as E
from host_tools.kmodel import parse, run
from host_tools.kmodel.emulator import plans
from tests.conftest import ROOT

POOLS = (0, 1, 2, 3, 4, 5, 8, 9)         # what lowering emits
CORPUS = 48


def random_conv_layer(rng, i) -> ir.ConvLayer:
    """A conv layer as lowering makes it from an int8 tflite: uint8 weights (int8 + 128), zero points as bytes,
    per-channel multipliers sx*sw_c/so, int32 biases, the output's clamp and an optional LeakyReLU op."""
    k = int(rng.choice([1, 3]))
    dw = bool(rng.random() < 0.3)
    ic = int(rng.integers(1, 65))
    oc = ic if dw else int(rng.integers(1, 65))
    pool = int(rng.choice(POOLS))
    h, w = (int(v) for v in rng.integers(4, 18, 2))
    shape = (oc, k, k) if dw else (oc, ic, k, k)
    per_channel = bool(rng.random() < 0.7)          # symmetric per-channel weights (zero point 0), or one zero point
    w0 = 128 if per_channel else int(rng.integers(60, 200))
    weights = np.clip(np.round(rng.normal(0, rng.uniform(10, 60), shape)) + w0, 0, 255).astype(np.uint8)
    x0 = int(rng.integers(0, 256))
    mults = np.exp(rng.uniform(np.log(2e-4), np.log(0.2), oc)) if per_channel else \
        np.full(oc, np.exp(rng.uniform(np.log(2e-4), np.log(0.2))))
    bias = np.round(rng.normal(0, 30, oc) / mults).astype(np.int64)      # about +-30 output steps
    kind = rng.choice(["linear", "relu", "relu6", "leaky"])
    # a (leaky) ReLU output's range starts at 0 (or alpha * its lowest), so its zero point is at or near byte 0;
    # a ReLU6 clamp below byte 255 (an output range past 6) only at bytes a result bias can hold
    zo = int(rng.integers(0, 256)) if kind in ("linear", "leaky") else 0
    clamp, post = (0, 255), None
    if kind == "relu":
        clamp = (zo, 255)
    elif kind == "relu6":
        clamp = (zo, int(rng.choice([255, int(rng.integers(30, E.FIELDS["bias"][1] + 1))])))
    elif kind == "leaky":
        z2 = int(rng.integers(0, 80))
        post = (float(rng.uniform(0.05, 0.3)), float(rng.uniform(0.5, 2.0)), z2, 0, 255)
    inp = ir.Value("in%d" % i, (ic, h, w), "u8", 1.0, x0, in_kpu=True)
    oh, ow = (h // 4, w // 4) if pool in (3, 4) else (h // 2, w // 2) if pool in (1, 2, 5) else (h, w)
    out = ir.Value("out%d" % i, (oc, oh, ow), "u8", 1.0, zo, in_kpu=True)
    return ir.ConvLayer(i, "CONV_2D", inp, out, weights, k, dw, pool, x0, w0, mults, bias, conv_zero=zo,
                        clamp=clamp, post=post)


def one_layer_kmodel(L: ir.ConvLayer):
    """The kmodel the compiler writes for a program of this one layer, read back."""
    L.main_out, L.out.in_main = True, True
    prog = ir.Program("corpus", L.inp, [L], [L.out])
    mem = planner.plan(prog)
    return parse(emit.write(prog, mem["main_mem"]), "corpus layer %d" % L.op_index)


def tflite_output(L: ir.ConvLayer, a: K.ConvArith, x) -> np.ndarray:
    """What TFLite's int8 kernels give: clamp(round((acc + bias)*M) + zo), then a LeakyReLU op's own rounding."""
    acc = K.accumulators(a, x).astype(np.float64)
    q = np.round((acc + L.bias[:, None, None]) * L.multipliers[:, None, None]) + L.conv_zero
    q = np.clip(q, *L.clamp)
    if L.post is not None:
        alpha, ratio, z2, lo2, hi2 = L.post
        d = q - L.conv_zero
        q = np.clip(np.round(z2 + ratio * np.where(d >= 0, d, alpha * d)), lo2, hi2)
    return K.pool(q.astype(np.uint8), L.pool)


def corpus():
    """CORPUS random layers, the last with all-zero weights (a dead layer: its output is its bias)."""
    rng = np.random.default_rng(1313)
    layers = [random_conv_layer(rng, i) for i in range(CORPUS)]
    L = layers[-1]
    L.weights[...] = L.w0
    return layers


def test_random_layers_compile_inside_the_envelope_and_the_emulator_computes_the_prediction():
    rng = np.random.default_rng(7)
    off, total = np.zeros(2, np.int64), np.zeros(2, np.int64)      # plain layers, layers with a LeakyReLU op
    for L in corpus():
        a = layer_arith(L)
        assert E.excesses(a) == [], (L.op_index, [str(e) for e in E.excesses(a)])
        km = one_layer_kmodel(L)
        plan = plans(km)[0]
        for field in ("norm_mul", "norm_shift", "norm_add", "x_start", "y_mul", "shift", "bias"):
            np.testing.assert_array_equal(getattr(plan.arith, field), getattr(a, field), err_msg=field)
        for _ in range(2):
            x = rng.integers(0, 256, L.inp.shape).astype(np.uint8)
            want = K.forward(a, x)                       # the compiler's prediction
            np.testing.assert_array_equal(plan.fast.forward(x), want, err_msg=str(L.op_index))
            np.testing.assert_array_equal(run(km, x)[0], want, err_msg=str(L.op_index))
            d = want.astype(int) - tflite_output(L, a, x)
            kind = int(L.post is not None)
            off[kind] += np.count_nonzero(d)
            total[kind] += d.size
            assert np.abs(d).max() <= 1, L.op_index
    rate = off / total
    print("random corpus, %d layers: outputs differing from TFLite's int8 arithmetic by one step: %.4f%% (conv with "
          "its own clamp), %.2f%% (conv + LeakyReLU op: TFLite rounds the conv's output first, the KPU's table once)"
          % (CORPUS, 100 * rate[0], 100 * rate[1]))
    assert rate[0] < 1e-3 and rate[1] < 0.2


@pytest.mark.parametrize("name", ["digits", "faces"])
def test_demo_models_every_layer_is_the_compilers_prediction(name):
    """Each conv layer of the compiled demo model, on the map the emulator fed it: its output is the compiler's
    predicted integers, from the emulator's reference and from its fast path."""
    from host_tools.compiler import compile_tflite
    c = compile_tflite(ROOT / "models" / (name + "_int8.tflite"))
    conv = plans(c.kmodel)
    seen = []

    def tap(L, x, y):
        want = K.forward(layer_arith(c.program.layers[L.index]), x)
        assert np.unique(want).size > 3, L.index              # a live map, not stuck at a clamp
        np.testing.assert_array_equal(y, want, err_msg="layer %d" % L.index)
        np.testing.assert_array_equal(conv[L.index].fast.forward(x), want, err_msg="layer %d" % L.index)
        seen.append(L.index)
    rng = np.random.default_rng(3)
    run(c.kmodel, rng.integers(0, 256, c.kmodel.input_shape).astype(np.uint8), exact=True, taps=tap)
    assert sorted(seen) == sorted(conv)
