"""Mutation fuzzing of the V4 reader (and the V4 emulator on what still parses): only KmodelError, bounded cost.
2,000 mutants of nncase v0.2's two V4 files, concentrated on the header, the tables and the node bodies."""
import pytest

from conftest import FIXTURES
from host_tools.kmodel import parse
from test_kmodel_fuzz import KINDS, _fuzz

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


@pytest.mark.parametrize("name, examples", [("iris4", 1200), ("yolo4", 800)])
def test_v4_mutants_give_only_kmodel_error(name, examples):
    _fuzz(name, examples, fixture, ("u32",) + KINDS)     # u32 edits more likely: V4 bodies are u32 fields
