"""Mutation fuzzing of the reader (and the emulator on what still parses): only KmodelError, bounded cost."""
import struct
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import FIXTURES
from host_tools.kmodel import KmodelError, netinfo, parse, run

FILES = {
    "iris": "nncase-iris/iris.kmodel",
    "mnist": "maixpy-mnist/mnist.kmodel",
    "cifar": "emc-cifar10/cifar10_output.kmodel",
    "yolo": "nncase-yolo20/yolo.kmodel",
}
RUN_MACS_LIMIT = 20_000_000       # emulate the mutants whose conv work stays small
INTERESTING = [0, 1, 2, 3, 4, 7, 8, 15, 16, 63, 64, 255, 256, 1023, 1024, 0x7FFF, 0x8000, 0xFFFF, 0x10000,
               0x7FFFFFFF, 0x80000000, 0xFFFFFFF8, 0xFFFFFFFF]

_cache = {}


def fixture(name):
    if name not in _cache:
        p = FIXTURES / FILES[name]
        if not p.is_file():
            pytest.skip("fixture %s not found (../shared/fixtures is beside the checkout, not in it)" % p)
        data = p.read_bytes()
        m = parse(data)
        # where the structure lives: header, tables, body fields, conv registers / BN / activation tables
        spots = set(range(0, min(len(data), m.layers[0].offset + 64), 4))
        for L in m.layers:
            spots.update(range(L.offset, min(L.offset + 64, len(data)), 4))
            if L.regs is not None:
                for key in ("layer_offset", "bn_offset", "act_offset"):
                    base = L.fields[key]
                    spots.update(range(base, min(base + 96, len(data)), 4))
        _cache[name] = (data, sorted(s for s in spots if s < len(data)))
    return _cache[name]


KINDS = ("u32", "u32", "byte", "bitflip", "truncate", "extend", "cut")     # u32 twice: twice as likely


@st.composite
def mutants(draw, name, source=None, kinds=KINDS):
    """A mutant of fixture `name` (source(name) gives its bytes and structure offsets; this file's fixture
    by default): 1 to 4 edits of the given kinds."""
    data, spots = (source or fixture)(name)
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(kinds))
        pos = draw(st.one_of(st.sampled_from(spots), st.integers(0, max(len(b) - 1, 0))))
        if kind == "u32" and pos + 4 <= len(b):
            v = draw(st.one_of(st.sampled_from(INTERESTING), st.integers(0, 0xFFFFFFFF)))
            b[pos:pos + 4] = struct.pack("<I", v)
        elif kind == "byte" and pos < len(b):
            b[pos] = draw(st.integers(0, 255))
        elif kind == "bitflip" and pos < len(b):
            b[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del b[pos:]
        elif kind == "extend":
            b += bytes(draw(st.integers(1, 64)))
        elif kind == "cut" and pos < len(b):
            del b[pos:pos + draw(st.integers(1, 16))]
    return bytes(b)


def check_one(name, blob):
    tracemalloc.start()
    t0 = time.process_time()     # CPU, not wall: a loaded machine must not fail a bound on the parser's work
    try:
        m = parse(blob, name + ".kmodel")
    except KmodelError as e:
        assert e.code in (2002, 2003, 2006, 2015) and str(e).startswith(name + ".kmodel")
        m = None
    finally:
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    assert time.process_time() - t0 < 2.0
    assert peak < 2 * len(blob) + (4 << 20), peak     # no allocation the file does not justify
    if m is None or netinfo(m).macs > RUN_MACS_LIMIT:
        return
    x = np.zeros(m.input_shape[0], np.float32) if m.input_is_float else np.zeros(m.input_shape, np.uint8)
    try:
        outs = run(m, x)
    except KmodelError as e:
        assert e.code == 2008 and e.layer is not None
        return
    assert len(outs) == len(m.outputs)


def _fuzz(name, examples, source=None, kinds=KINDS):
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def inner(data):
        with np.errstate(all="ignore"):
            check_one(name, data.draw(mutants(name, source, kinds)))
    inner()


@pytest.mark.parametrize("name", ["iris", "mnist", "cifar", "yolo"])
def test_mutants_give_only_kmodel_error(name):
    _fuzz(name, 150)


@pytest.mark.heavy       # 800 mutants per file (78 s CPU for the four): make test runs 150 each
@pytest.mark.parametrize("name", ["iris", "mnist", "cifar", "yolo"])
def test_mutants_give_only_kmodel_error_long(name):
    _fuzz(name, 800)


def test_absurd_counts_are_refused_before_allocating():
    data, _ = fixture("mnist")
    b = bytearray(data)
    b[12:16] = struct.pack("<I", 0xFFFFFFFF)          # layers_length
    with pytest.raises(KmodelError) as e:
        parse(bytes(b))
    assert e.value.field == "layers_length"
    b = bytearray(data)
    b[20:24] = struct.pack("<I", 0x7FFFFFFF)          # main_mem_usage
    with pytest.raises(KmodelError) as e:
        parse(bytes(b))
    assert e.value.code == 2006 and e.value.field == "main_mem_usage"
