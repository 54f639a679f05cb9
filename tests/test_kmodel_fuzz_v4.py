"""Mutation fuzzing of the V4 reader (and the V4 emulator on what still parses): only KmodelError, bounded cost.
2,000 mutants of nncase v0.2's two V4 files, concentrated on the header, the tables and the node bodies."""
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from conftest import FIXTURES
from host_tools.kmodel import parse
from test_kmodel_fuzz import INTERESTING, check_one

FILES = {"iris4": "nncase-v4-iris/iris.kmodel", "yolo4": "nncase-v4-yolo20/yolo.kmodel"}
_cache = {}


def fixture(name):
    if name not in _cache:
        p = FIXTURES / FILES[name]
        if not p.is_file():
            pytest.skip("fixture %s not found (../shared/fixtures is beside the checkout, not in it)" % p)
        data = p.read_bytes()
        m = parse(data)
        spots = set(range(0, min(len(data), m.layers[0].offset), 4))        # header, ranges, shapes, node heads
        for L in m.layers:
            spots.update(range(L.offset, min(L.offset + 160, L.offset + L.body_size), 4))   # fields, registers
        _cache[name] = (data, sorted(spots))
    return _cache[name]


@st.composite
def mutants(draw, name):
    data, spots = fixture(name)
    b = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["u32", "u32", "u32", "byte", "bitflip", "truncate", "extend", "cut"]))
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


def _fuzz(name, examples):
    @settings(max_examples=examples, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.data())
    def inner(data):
        with np.errstate(all="ignore"):
            check_one(name, data.draw(mutants(name)))
    inner()


@pytest.mark.parametrize("name, examples", [("iris4", 1200), ("yolo4", 800)])
def test_v4_mutants_give_only_kmodel_error(name, examples):
    _fuzz(name, examples)
