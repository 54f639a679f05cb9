"""KPU conv arithmetic: the fast path (integer GEMM + numba kernels, kpu_fast) against the int64 reference
(k210.arith), pooling. The GEMM runs as the probe finds, or as MAIXKIT_GEMM forces it; the `gemm` fixture runs a
test both ways."""
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest

from conftest import fixture_file
from host_tools.k210 import arith as A
from host_tools.k210 import kpu as hw
from host_tools.k210 import registers as R
from host_tools.k210.arith import POOL_TYPES, carry_shift, pool
from host_tools.kmodel import int_gemm, kpu, load, run
from host_tools.kmodel import kpu_kernels as K
from host_tools.kmodel.kpu_fast import FastConv, conv_params
from host_tools.kmodel.kpu_ram import Deferred


class Plan:
    """A layer's reference and fast path side by side."""

    def __init__(self, L):
        self.arith = kpu.layer_arith(L)
        self.fast = FastConv(conv_params(self.arith, L.in_shape, L.out_shape))
        self.p = self.fast.p
        self.proofs = self.p.proofs

    def forward(self, x):
        return self.fast.forward(x)

    def forward_exact(self, x):
        return A.forward(self.arith, x)

    def accumulators(self, x):
        return A.accumulators(self.arith, x)

    def finish(self, acc):
        """The reference's outputs for accumulators."""
        return A.activation_map(self.arith, A.bn_map(self.arith, acc))


@pytest.fixture(params=["signed", "unsigned"])
def gemm(request, monkeypatch):
    """The test runs with the GEMMs forced each way (signed only where this CPU's probe finds it exact)."""
    if request.param == "signed":
        monkeypatch.delenv(int_gemm.GEMM_ENV, raising=False)
        if not int_gemm.signed_columns_exact():
            pytest.skip("this CPU's uint8 x int8 kernel saturates")
    monkeypatch.setenv(int_gemm.GEMM_ENV, request.param)
    return request.param


def random_layer(rng, ic, oc, h, w, k, dw, pool_type, bits=8, wild=False):
    """A K210_CONV layer with random but register-valid arithmetic (wild: values that may wrap at 36 bits)."""
    regs = R.default_layer_regs()
    oc = ic if dw else oc
    oh, ow = hw.pooled_size(h, w, pool_type)
    regs.interrupt_enabe.depth_wise_layer = int(dw)
    regs.image_channel_num.i_ch_num, regs.image_channel_num.o_ch_num = ic - 1, oc - 1
    regs.image_size.i_row_wid, regs.image_size.i_col_high = w - 1, h - 1
    regs.image_size.o_row_wid, regs.image_size.o_col_high = ow - 1, oh - 1
    regs.kernel_pool_type_cfg.kernel_type = 1 if k == 3 else 0
    regs.kernel_pool_type_cfg.pool_type = pool_type
    regs.kernel_pool_type_cfg.pad_value = int(rng.integers(0, 256))
    for name, (hh, ww) in (("in", (h, w)), ("out", (oh, ow))):
        lay = R.layout_fields(hh, ww)
        if name == "in":
            c = regs.kernel_calc_type_cfg
            c.channel_switch_addr, c.row_switch_addr, c.coef_group = (lay["channel_switch_addr"],
                                                                     lay["row_switch_addr"], lay["coef_group"])
        else:
            wb = regs.write_back_cfg
            wb.wb_channel_switch_addr, wb.wb_row_switch_addr, wb.wb_group = (lay["channel_switch_addr"],
                                                                            lay["row_switch_addr"],
                                                                            lay["coef_group"])
    regs.image_addr.image_dst_addr = hw.ram_rows(ic, h, w)
    cv = regs.conv_value
    big = 23 if wild else 22
    cv.arg_x, cv.arg_w = (int(v) for v in rng.integers(-(1 << big), 1 << big, 2))
    cv.shr_x, cv.shr_w = (int(v) for v in rng.integers(0, 16, 2))
    regs.conv_value2.arg_add = int(rng.integers(-(1 << (39 if wild else 20)), 1 << (39 if wild else 20)))
    wmax = (1 << bits) - 1
    shape = (oc, k, k) if dw else (oc, ic, k, k)
    weights = rng.integers(0, wmax + 1, shape).astype(np.uint8 if bits == 8 else np.uint16)
    mul = rng.integers(-(1 << 23) if wild else 0, 1 << (23 if wild else 16), oc)
    shift = rng.integers(0, 16, oc) if wild else np.full(oc, 15)
    add = rng.integers(-(1 << 24), 1 << 24, oc)
    span = 1 << (24 if wild else 17)         # real tables (nncase) change within a narrow band of bn
    starts = np.sort(rng.integers(-span, span, 15))
    act = [R.ActSegment(x_start=-(1 << 35), y_mul=0, shift=0, bias=int(rng.integers(0, 256)))]
    for s in starts:
        act.append(R.ActSegment(x_start=int(s), y_mul=int(rng.integers(-50 if wild else 1 << 10, 1 << 15)),
                                shift=int(rng.integers(0, 30) if wild else rng.integers(12, 19)),
                                bias=int(rng.integers(0, 256))))
    return SimpleNamespace(regs=regs, weights=weights, bn=(mul, add, shift), act=act, in_shape=(ic, h, w),
                           out_shape=(oc, oh, ow))


CASES = [(3, 8, 12, 20, 3, False), (16, 16, 9, 17, 3, True), (40, 24, 5, 40, 1, False), (8, 8, 6, 70, 1, True),
         (64, 300, 4, 4, 1, False), (12, 20, 33, 9, 3, False)]


@pytest.mark.parametrize("pool_type", range(10))
def test_compiled_path_equals_int64_reference(pool_type):
    rng = np.random.default_rng(pool_type)
    bounded = 0
    for i, (ic, oc, h, w, k, dw) in enumerate(CASES):
        for wild in (False, True):
            for bits in (8, 16):
                L = random_layer(rng, ic, oc, h, w, k, dw, pool_type, bits, wild)
                if not wild:
                    L = spread_bn(L, rng)
                p = Plan(L)
                bounded += not p.proofs.may_wrap
                x = rng.integers(0, 256, (ic, h, w)).astype(np.uint8)
                y = p.forward_exact(x)
                # not stuck at one clamp value (a 4x4 pool of a 4x4 map leaves one pixel: max of 16 saturates)
                assert wild or y[0].size < 4 or np.unique(y).size > 5, (i, bits)
                np.testing.assert_array_equal(p.forward(x), y, err_msg=str((i, wild, bits)))
    assert bounded >= 6        # the realistic layers are proved free of wrapping (fewer segments to search)


@pytest.mark.parametrize("pool_type", [0, 5])
def test_unsigned_gemm_equals_reference(pool_type, monkeypatch):
    """Where uint8 x int8 would saturate (AVX2 without VNNI) the GEMM runs uint8 x uint8: same integers."""
    monkeypatch.setenv(int_gemm.GEMM_ENV, "unsigned")
    rng = np.random.default_rng(50 + pool_type)
    for ic, oc, h, w, k, dw in CASES:
        if dw:
            continue
        p = Plan(spread_bn(random_layer(rng, ic, oc, h, w, k, dw, pool_type), rng))
        x = rng.integers(0, 256, (ic, h, w)).astype(np.uint8)
        np.testing.assert_array_equal(p.forward(x), p.forward_exact(x))
        assert p.fast.prep.gemm.x_offset == 0


@pytest.mark.parametrize("signed", [True, False])
def test_exact_gemm_at_the_extremes(signed, monkeypatch):
    """255 x 255 (and x 0) in every product, long sums, both kernels (uint8 x int8 only where the probe says)."""
    monkeypatch.delenv(int_gemm.GEMM_ENV, raising=False)
    if signed and not int_gemm.signed_columns_exact():
        pytest.skip("this CPU's uint8 x int8 kernel saturates; the probe keeps it off")
    monkeypatch.setenv(int_gemm.GEMM_ENV, "signed" if signed else "unsigned")
    w = np.zeros((1024, 6), np.uint8)
    w[:, ::2] = 255
    w[::2, 1] = 255
    x = np.full((1024, 5), 255, np.uint8)
    x[::3, 1] = 0
    x[::5, 3] = 0
    g = int_gemm.ExactGemm(w)
    got = g(x ^ np.uint8(g.flip)).astype(np.int64)
    sw, sx = w.astype(np.int64).sum(axis=0), x.astype(np.int64).sum(axis=0)
    np.testing.assert_array_equal(got[:-1] + g.x_offset * sw[:, None], w.T.astype(np.int64) @ x)
    np.testing.assert_array_equal(got[-1] + g.x_offset * len(w), sx)


def test_segment_search_keeps_only_entries_that_can_win():
    """Entries a later one starts at or below never win; with bounds, entries past bn's range go too. Unsorted
    and padded tables still equal the reference."""
    rng = np.random.default_rng(7)
    L = spread_bn(random_layer(rng, 8, 8, 6, 10, 3, False, 0), rng)
    top = R.ActSegment(x_start=1 << 16, y_mul=0, shift=0, bias=255)     # spread_bn's output reaches 255 there
    L.act = L.act[:2] + [top] * 14                               # nncase pads with copies of the last entry
    p = Plan(L)
    assert p.proofs.live.tolist() == [0, 1, 15] and not p.proofs.may_wrap
    act = list(L.act)
    act[3], act[9] = R.ActSegment(x_start=1 << 20, y_mul=7, shift=3, bias=9), \
        R.ActSegment(x_start=-(1 << 12), y_mul=255, shift=16, bias=10)    # unsorted
    L.act = act
    p = Plan(L)
    xs = p.arith.x_start[p.proofs.live]
    # 3 loses to the later, lower starts of the padding; 9 wins over everything before it
    assert (np.diff(xs[1:]) > 0).all() and 3 not in p.proofs.live and 9 in p.proofs.live
    for _ in range(3):
        x = rng.integers(0, 256, L.in_shape).astype(np.uint8)
        y = p.forward_exact(x)
        assert np.unique(y).size > 5
        np.testing.assert_array_equal(p.forward(x), y)


@pytest.mark.parametrize("name, inputs", [("nncase-yolo20/yolo.kmodel", 1), ("emc-cifar10/cifar10_output.kmodel", 3),
                                          ("maixpy-mnist/mnist.kmodel", 3)])
def test_compiled_path_equals_reference_on_fixtures(name, inputs):
    m = load(fixture_file(*name.split("/")))
    if "yolo" in name:      # nncase's 16-piece leaky tables are looked up (kpu_proofs.lookup_table), so tested here
        from host_tools.kmodel.emulator import plans
        assert sum(p.fast.p.proofs.lut.size > 0 for p in plans(m).values()) >= 10
    rng = np.random.default_rng(1)
    for _ in range(inputs):
        x = rng.integers(0, 256, m.input_shape).astype(np.uint8)
        for a, b in zip(run(m, x), run(m, x, exact=True)):
            np.testing.assert_array_equal(a, b)


def test_pool_types():
    y = np.arange(16, dtype=np.uint8).reshape(1, 4, 4) * 10
    assert pool(y, 0) is y
    np.testing.assert_array_equal(pool(y, 1)[0], [[50, 70], [130, 150]])            # max 2x2/2
    np.testing.assert_array_equal(pool(y, 2)[0], [[25, 45], [105, 125]])            # mean 2x2/2 (floor)
    np.testing.assert_array_equal(pool(y, 3)[0], [[150]])
    np.testing.assert_array_equal(pool(y, 4)[0], [[75]])
    np.testing.assert_array_equal(pool(y, 5)[0], [[0, 20], [80, 100]])             # left-top sample
    np.testing.assert_array_equal(pool(y, 6)[0], [[10, 30], [90, 110]])             # right-top sample
    np.testing.assert_array_equal(pool(y, 7)[0], [[0]])
    m8 = pool(y, 8)[0]                                                              # mean 2x2/1, same size
    assert m8.shape == (4, 4) and m8[0, 0] == 25 and m8[3, 3] == 150 and m8[0, 3] == (30 + 70) // 2
    m9 = pool(y, 9)[0]
    assert m9.shape == (4, 4) and m9[0, 0] == 50 and m9[3, 0] == 130 and m9[3, 3] == 150


def test_carry_shift_matches_the_sdk():
    v = np.array([0, 1, 2, 3, 5, 6, 7, -1, -2, -3, -5], np.int64)
    # SDK kpu_carry_shift(v, 1): value >>= 0; odd -> (v >> 1) +/- 1
    assert carry_shift(v, 1).tolist() == [0, 1, 1, 2, 3, 3, 4, -2, -1, -3, -4]
    assert carry_shift(v, 0).tolist() == v.tolist()


def wide_bn_layer(rng, ic, oc, h, w, k, dw, pool_type, leaky, integer_a=False):
    """A layer like our compiler writes: BN spread over ~2^27 units across the accumulator range of random
    inputs (too wide for one table), so the outputs take many values and a wrong step shows.
    integer_a: arg_x = -zero_point << shr_x as nncase writes it, else no zero-point terms."""
    L = random_layer(rng, ic, oc, h, w, k, dw, pool_type)
    cv = L.regs.conv_value
    cv.arg_x = cv.arg_w = cv.shr_x = 0
    if integer_a:
        cv.shr_x = int(rng.integers(0, 16))
        cv.arg_x = -int(rng.integers(0, 256)) << cv.shr_x
    L.regs.conv_value2.arg_add = 0
    p = Plan(L)
    acc = p.accumulators(rng.integers(0, 256, L.in_shape).astype(np.uint8))
    lo, hi = (np.percentile(acc.reshape(len(acc), -1), q, axis=1).astype(np.int64) for q in (5, 95))
    mul = np.minimum((1 << 29) // (hi - lo + 1), (1 << 23) - 1)      # bn = (acc - lo) * ~2^27 / (hi - lo)
    L.bn = (mul, -((lo * mul) >> 2), np.full(oc if not dw else ic, 2))
    act = [R.ActSegment(x_start=-(1 << 35), y_mul=0, shift=0, bias=0)]
    if leaky:  # a shallow slope below 0, a steep one above: two pieces with steps of different widths
        act.append(R.ActSegment(x_start=-(1 << 28), y_mul=int(rng.integers(1, 64)), shift=34, bias=20))
    act.append(R.ActSegment(x_start=0, y_mul=32767, shift=34, bias=20 if leaky else 0))
    act += [R.ActSegment(x_start=1 << 34, y_mul=0, shift=0, bias=255)] * (16 - len(act))
    L.act = act
    return L


@pytest.mark.parametrize("pool_type", [0, 1, 2, 3, 5, 9])
def test_wide_bn_layers_equal_int64_reference(pool_type):
    """Layers as our compiler writes them: BN spread over ~2^27 units per output range, one or two pieces; max
    pools go first on the accumulators (pooled inside the kernel where window = stride)."""
    rng = np.random.default_rng(100 + pool_type)
    for ic, oc, h, w, k, dw in CASES[:4]:
        for leaky in (False, True):
            p = Plan(wide_bn_layer(rng, ic, oc, h, w, k, dw, pool_type, leaky))
            assert p.proofs.monotone or POOL_TYPES[pool_type][0] != "max" or leaky
            for _ in range(3):
                x = rng.integers(0, 256, (ic, h, w)).astype(np.uint8)
                y = p.forward_exact(x)
                assert np.unique(y).size > min(20, y.size // 10), (ic, oc, leaky)    # 4x4 max pools leave few
                np.testing.assert_array_equal(p.forward(x), y)


@pytest.mark.parametrize("name", ["digits", "faces"])
def test_demo_kmodels_equal_the_reference(name):
    from conftest import ROOT
    from host_tools.kmodel.reader import K210_CONV
    m = load(ROOT / "models" / (name + ".kmodel"))      # committed: no skip
    plans = [Plan(L) for L in m.layers if L.type == K210_CONV]
    # our compiler's layers are proved free of 36-bit wrapping, with at most 3 activation entries to search
    assert plans and all(not p.proofs.may_wrap and len(p.proofs.live) <= 3 for p in plans)
    rng = np.random.default_rng(2)
    for _ in range(2):
        x = rng.integers(0, 256, m.input_shape).astype(np.uint8)
        for a, b in zip(run(m, x), run(m, x, exact=True)):
            np.testing.assert_array_equal(a, b)


def spread_bn(L, rng):
    """BN and activation spread over the accumulator range of random inputs, so outputs take many values and a
    wrong sum shows (random BN values leave most outputs at one clamp)."""
    p = Plan(L)
    acc = p.accumulators(rng.integers(0, 256, L.in_shape).astype(np.uint8))
    lo, hi = (np.percentile(acc.reshape(len(acc), -1), q, axis=1).astype(np.int64) for q in (5, 95))
    # bn = (acc - lo) * ~2^16 / (hi - lo) with norm_shift 15 (4 bits); a flat channel must not blow BN up
    mul = np.clip((1 << 31) // (hi - lo + 1), 1, 1 << 16)
    L.bn = (mul, -((lo * mul) >> 15), np.full(len(mul), 15))
    L.act = [R.ActSegment(x_start=-(1 << 35), y_mul=0, shift=0, bias=0),
             R.ActSegment(x_start=0, y_mul=255, shift=16, bias=0)] + \
        [R.ActSegment(x_start=1 << 34, y_mul=0, shift=0, bias=255)] * 14
    return L


def with_integer_a(L, rng):
    """arg_x = -zero_point << shr_x as nncase writes it (a = arg_x / 2^shr_x an integer), BN spread."""
    cv = L.regs.conv_value
    cv.shr_x = int(rng.integers(0, 16))
    cv.arg_x = -int(rng.integers(0, 256)) << cv.shr_x
    return spread_bn(L, rng)


@pytest.mark.parametrize("pool_type", [0, 1, 5, 8])
def test_depthwise_equals_int64_reference(pool_type):
    """Depthwise layers as nncase writes them (arg_x = -zero_point << shr_x: a = arg_x / 2^shr_x joins the taps,
    no window sums), with 16-bit weights, and with our compiler's wide BN."""
    rng = np.random.default_rng(200 + pool_type)
    for c, h, w, k in ((64, 5, 9, 3), (96, 4, 6, 3), (16, 9, 17, 3), (70, 3, 4, 1)):
        for bits, wide in ((8, False), (8, True), (16, False)):
            if wide:
                L = wide_bn_layer(rng, c, c, h, w, k, True, pool_type, True, integer_a=True)
            else:
                L = with_integer_a(random_layer(rng, c, c, h, w, k, True, pool_type, bits), rng)
            p = Plan(L)
            for _ in range(2):
                x = rng.integers(0, 256, (c, h, w)).astype(np.uint8)
                y = p.forward_exact(x)
                assert np.unique(y).size > 20 or bits == 16, (c, k, bits)
                np.testing.assert_array_equal(p.forward(x), y, err_msg=str((c, k, bits, wide)))
            assert p.fast.prep.dw.arg_x == 0 or bits == 16, (c, k, bits)     # folded where int32 sums allow


@pytest.mark.parametrize("pool_type", [0, 1, 8])
def test_integer_a_gemm_layers_equal_int64_reference(pool_type):
    rng = np.random.default_rng(300 + pool_type)
    for ic, oc, h, w, k in ((3, 8, 12, 20, 3), (40, 24, 5, 40, 1), (12, 20, 9, 9, 3), (300, 16, 3, 5, 3)):
        for bits in (8, 16):
            p = Plan(with_integer_a(random_layer(rng, ic, oc, h, w, k, False, pool_type, bits), rng))
            for _ in range(2):
                x = rng.integers(0, 256, (ic, h, w)).astype(np.uint8)
                y = p.forward_exact(x)
                assert np.unique(y).size > min(20, y.size // 4), (ic, k, bits)
                np.testing.assert_array_equal(p.forward(x), y, err_msg=str((ic, k, bits)))


def relu_layer(rng, ic, oc, h, w, k, dw, pool_type, zero_point):
    """Our compiler's ReLU/ReLU6 layer with an output zero point: zero_point below 0, rising from it above."""
    L = wide_bn_layer(rng, ic, oc, h, w, k, dw, pool_type, leaky=False)
    L.act = [replace(s, bias=zero_point) if s.x_start <= 0 else s for s in L.act]
    return L


def exhaustive_acc(p, span):
    """Per channel, every accumulator within `span` of where its output is mid-range (kpu_proofs.affine's A0),
    clipped to what the layer can reach: all the output steps, the exact ties among them."""
    a0 = p.proofs.affine.a0
    acc = a0[:, None] + np.arange(-span, span)[None, :]
    return np.clip(acc, p.proofs.acc_bounds[0][:, None], p.proofs.acc_bounds[1][:, None])


@pytest.mark.parametrize("zero_point, pool_type", [(0, 0), (97, 0), (0, 5), (97, 1)])
def test_float32_path_equals_integer_stages_on_every_accumulator(zero_point, pool_type):
    """The float32 path (kpu_proofs.affine) against the integer stages on every accumulator value across the
    output range of each channel; then with every element sent to the exact fallback; then whole layers, the
    3x3 depthwise ones with their sums fed straight into it."""
    rng = np.random.default_rng(400 + zero_point + pool_type)
    for ic, oc, h, w, k, dw in CASES[:4]:
        p = Plan(relu_layer(rng, ic, oc, h, w, k, dw, pool_type, zero_point))
        assert p.proofs.affine is not None, (ic, oc, k, dw)
        span = int(np.ceil(140 / np.abs(p.proofs.affine.alpha).min()))
        acc = exhaustive_acc(p, min(span, 1 << 18))
        want = p.finish(acc)
        assert np.unique(want).size == 256 - zero_point
        fin = p.p.finish
        for margin in (None, 1.0):
            f = fin if margin is None else fin._replace(margin=np.full_like(fin.margin, margin))
            got = np.empty(acc.shape, np.uint8)
            K.finish_accumulators(acc, f, got)
            np.testing.assert_array_equal(got, want, err_msg=str((ic, oc, k, dw, margin)))
        for _ in range(2):
            x = rng.integers(0, 256, (ic, h, w)).astype(np.uint8)
            np.testing.assert_array_equal(p.forward(x), p.forward_exact(x))
        assert not (dw and k == 3) or p.fast.prep.dw.f32 == 2


@pytest.mark.parametrize("r0, c0", [(0, 0), (0, 1), (1, 0), (1, 1)])
def test_depthwise_at_a_stride_2_grid_gives_the_references_pixels(r0, c0):
    """A 3x3 depthwise layer on the float32 path computed only at a stride-2 grid, as a 1x1 layer that samples
    its output asks for it (kpu_ram.Deferred): the reference's pixels there, XOR the GEMM's flip. Odd and even
    sizes, down to 2x3, 7x7 and 14x14 maps as in MobileNet's last blocks, and rows of 97 and 112 pixels (the
    phases filled in one loop)."""
    rng = np.random.default_rng(500 + 2 * r0 + c0)
    for c, h, w in ((16, 9, 17), (8, 7, 7), (5, 14, 14), (3, 2, 3), (4, 24, 10), (3, 5, 97), (2, 6, 112)):
        p = Plan(relu_layer(rng, c, c, h, w, 3, True, 0, int(rng.integers(0, 100))))
        oh, ow = (h - r0 + 1) // 2, (w - c0 + 1) // 2
        for flip in (0, 128):
            x = rng.integers(0, 256, (c, h, w)).astype(np.uint8)
            want = p.forward_exact(x)[:, r0::2, c0::2] ^ np.uint8(flip)
            assert want.shape == (c, oh, ow) and np.unique(want).size > min(20, want.size // 4)
            np.testing.assert_array_equal(p.fast.depthwise_at(x, K.Grid(2, r0, c0, oh, ow), flip), want,
                                          err_msg=str((c, h, w)))
        assert p.fast.prep.dw.f32 == 2


def hwc_view(x):
    """The same (c, h, w) map held pixel-major, as a pixel-major layer hands it on."""
    return np.ascontiguousarray(x.transpose(1, 2, 0)).transpose(2, 0, 1)


@pytest.mark.parametrize("pool_type", [0, 5, 6])
def test_pixel_major_layers_equal_int64_reference(pool_type, gemm):
    """1x1 layers with few pixels run on (pixels, channels) columns (int_gemm.ExactGemmT, kpu_kernels.
    finish_gemm_t), from channel-major and pixel-major input, with either GEMM; 3x3 depthwise layers given
    pixel-major input run channels innermost (depthwise_hwc), whole or at a sampled grid, as maps or as the next
    GEMM's columns."""
    rng = np.random.default_rng(600 + pool_type)
    for ic, oc, h, w, zp in ((40, 24, 5, 40, 0), (64, 96, 14, 14, 97), (24, 300, 4, 4, 3), (16, 5, 2, 3, 0)):
        p = Plan(relu_layer(rng, ic, oc, h, w, 1, False, pool_type, zp))
        assert p.p.pixel_major and p.fast.prep.gemm.w_offset == (128 if gemm == "signed" else 0)
        for _ in range(2):
            x = rng.integers(0, 256, (ic, h, w)).astype(np.uint8)
            want = p.forward_exact(x)
            assert np.unique(want).size > min(20, want.size // 4)
            np.testing.assert_array_equal(p.forward(x), want, err_msg=str((ic, oc, h, w)))
            np.testing.assert_array_equal(p.forward(hwc_view(x)), want, err_msg=str((ic, oc, h, w)))
    assert not Plan(relu_layer(rng, 8, 8, 17, 16, 1, False, 0, 0)).p.pixel_major      # 272 pixels
    for c, h, w in ((64, 14, 14), (24, 7, 7), (5, 9, 4)):
        p = Plan(relu_layer(rng, c, c, h, w, 3, True, pool_type, int(rng.integers(0, 100))))
        x = rng.integers(0, 256, (c, h, w)).astype(np.uint8)
        np.testing.assert_array_equal(p.forward(hwc_view(x)), p.forward_exact(x), err_msg=str((c, h, w)))
        assert p.fast.prep.dw.f32 == 2
        full = Plan(relu_layer(rng, c, c, h, w, 3, True, 0, int(rng.integers(0, 100))))
        want = full.forward_exact(x)
        for grid in (K.Grid(2, 0, 0, h // 2, w // 2), K.Grid(2, 0, 1, h // 2, w // 2)):
            s, r0, c0, oh, ow = grid
            sampled = want[:, r0:r0 + oh * s:s, c0:c0 + ow * s:s]
            for xin in (x, hwc_view(x)):
                np.testing.assert_array_equal(full.fast.depthwise_at(xin, grid, 128), sampled ^ np.uint8(128))
                cols = full.fast.depthwise_at(xin, grid, pixels_first=True)
                np.testing.assert_array_equal(cols, sampled.reshape(c, -1).T)


@pytest.mark.parametrize("pool_type", [0, 5, 6])
def test_1x1_layer_computes_a_deferred_depthwise_input_into_its_columns(pool_type, gemm):
    """A 1x1 layer given its depthwise input as a kpu_ram.Deferred (never computed whole) gives the reference's
    output: on the depthwise kernel's padded planes (no pool), at its sampled pixels (pools 5, 6), channel-major
    and pixel-major (few pixels); then with every element of the float32 path sent to the exact fallback."""

    def whole_map():
        raise AssertionError("the depthwise map was computed whole")
    rng = np.random.default_rng(700 + pool_type)
    for c, oc, h, w in ((24, 40, 30, 28), (16, 24, 13, 11), (8, 16, 40, 36)):
        dw = Plan(relu_layer(rng, c, c, h, w, 3, True, 0, int(rng.integers(0, 60))))
        pw = Plan(relu_layer(rng, c, oc, h, w, 1, False, pool_type, int(rng.integers(0, 60))))
        x = rng.integers(0, 256, (c, h, w)).astype(np.uint8)
        want = pw.forward_exact(dw.forward_exact(x))
        for every in (False, True):
            fast = pw.fast
            if every:
                fin = pw.p.finish
                fast = FastConv(replace(pw.p, finish=fin._replace(margin=np.ones_like(fin.margin))))
            d = Deferred(dw.fast, x)
            d.array = whole_map
            np.testing.assert_array_equal(fast.forward(d), want, err_msg=str((c, oc, h, w, pw.p.pixel_major, every)))
        assert dw.fast.prep.dw.f32 == 2


def test_float32_path_only_for_one_rising_piece():
    rng = np.random.default_rng(5)
    assert Plan(relu_layer(rng, 8, 8, 6, 6, 3, False, 0, 30)).proofs.affine is not None
    assert Plan(wide_bn_layer(rng, 8, 8, 6, 6, 3, False, 0, leaky=True)).proofs.affine is None    # two pieces
    L = relu_layer(rng, 8, 8, 6, 6, 3, False, 0, 30)
    L.act = [replace(s, bias=40) if s.x_start == 0 else s for s in L.act]    # jumps from 30 to 40 at 0
    assert Plan(L).proofs.affine is None


def test_flag_scan_finds_every_flag_in_order():
    # kpu_kernels._next_flag skips zero words four at a time: every flagged index, in order, at any length (tails
    # shorter than a word), density and start
    rng = np.random.default_rng(5)
    for n in (0, 1, 7, 8, 9, 31, 32, 33, 100, 257, 4099):
        for density in (0.0, 1e-3, 0.05, 0.5, 1.0):
            words, flags = K._flag_words(n)
            flags[:n] = rng.random(n) < density
            want = np.flatnonzero(flags[:n])
            got, j = [], K._next_flag(flags, words, n, 0)
            while j < n:
                got.append(j)
                j = K._next_flag(flags, words, n, j + 1)
            assert got == want.tolist(), (n, density)
            for start in {0, n // 3, n - 1} if n else ():
                nxt = want[want >= start]
                assert K._next_flag(flags, words, n, start) == (nxt[0] if nxt.size else n), (n, density, start)


def test_one_pixel_of_a_1x1_layer_is_the_references_pixel(gemm):
    """FastConv.one_pixel (a dense layer on the KPU, emulator._one_pixel): pixel (0, 0) of the reference's output,
    pixel-major (float32 path) or not (many activation pieces; 16-bit weights on the float64 GEMM)."""
    rng = np.random.default_rng(800)
    kinds = set()
    for L in (relu_layer(rng, 24, 40, 4, 4, 1, False, 0, 30), wide_bn_layer(rng, 24, 40, 4, 4, 1, False, 0, True),
              spread_bn(random_layer(rng, 16, 40, 4, 4, 1, False, 0, bits=16), rng)):
        p = Plan(L)
        kinds.add(p.p.pixel_major)
        seen = []
        for _ in range(3):
            x = rng.integers(0, 256, L.in_shape).astype(np.uint8)
            want = p.forward_exact(x)[:, 0, 0]
            np.testing.assert_array_equal(p.fast.one_pixel(x[:, 0, 0].copy()), want)
            seen.append(want)
        assert np.unique(seen).size > 10
    assert kinds == {True, False}
