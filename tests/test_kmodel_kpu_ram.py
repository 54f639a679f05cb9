"""KPU RAM: the SDK's placement of maps, and the lazy RAM giving the bytes eager writes would."""
import numpy as np
import pytest

from host_tools.k210 import kpu as hw
from host_tools.kmodel.kpu_ram import Deferred, KpuRam, RamMap, ram_index, rule_index


@pytest.mark.parametrize("w", [8, 16, 17, 32, 33, 64, 100, 320])
def test_ram_map_matches_the_sdk_upload_layout(w):
    rng = np.random.default_rng(w)
    c, h = 7, 5
    lay = hw.row_layout(w)
    x = rng.integers(0, 256, (c, h, w)).astype(np.uint8)
    ram = np.zeros(hw.RAM_BYTES, np.uint8)
    mp = RamMap(3, (c, h, w), lay.groups, lay.row_len, lay.row_len * h)
    mp.write(ram, x)
    np.testing.assert_array_equal(ram[ram_index(3, (c, h, w), lay.groups, lay.row_len, lay.row_len * h)], x)
    np.testing.assert_array_equal(mp.read(ram), x)
    assert ram[:3 * 64].sum() == 0 and np.count_nonzero(ram) <= x.size
    assert hw.ram_rows(c, h, w) * 64 >= ram.nonzero()[0].max() + 1 - 3 * 64


def random_map(rng):
    """A map at a random row with a random legal layout: groups per row, line and channel pitch from its size."""
    c, h, w = (int(v) for v in rng.integers(1, 9, 3)) if rng.random() < 0.5 else (3, 4, int(rng.integers(1, 40)))
    lay = hw.row_layout(w)
    ch_switch = lay.row_len * h + int(rng.integers(0, 2))
    return RamMap(int(rng.integers(0, 40)), (c, h, w), lay.groups, lay.row_len, ch_switch)


class Identity:
    """Stands for the fast path (kpu_fast.FastConv) of a Deferred: its output is its input."""
    def forward(self, x):
        return x


@pytest.mark.parametrize("seed", range(20))
def test_lazy_ram_reads_what_eager_writes_give(seed):
    """Random overlapping maps written (some as a Deferred), read back under other layouts, and CPU byte writes
    in between: every read equals a plain byte array written at once, and so do the bytes once everything is
    flushed."""
    rng = np.random.default_rng(seed)
    lazy, eager = KpuRam(), np.zeros(hw.RAM_BYTES, np.uint8)
    maps = [random_map(rng) for _ in range(6)]
    hits, deferred, last = 0, 0, maps[0]
    for step in range(60):
        mp = maps[int(rng.integers(len(maps)))]
        op = rng.random()
        if op < 0.45:
            y = rng.integers(0, 256, mp.shape).astype(np.uint8)
            lazy.write(mp, y if op < 0.2 else Deferred(Identity(), y))      # computed when first needed
            mp.write(eager, y)
            last = mp
        elif op < 0.9:
            mp = last if op < 0.6 else mp      # as a conv layer reads its predecessor's output
            got = lazy.read(mp, deferred=op < 0.6)
            if isinstance(got, Deferred):
                deferred += 1
                got = got.array()
            hits += any(got is e[1] for e in lazy.pending.values())
            np.testing.assert_array_equal(got, mp.read(eager), err_msg="step %d" % step)
        else:
            idx = rule_index(int(rng.integers(0, 40)), (2, 4, 4))      # as K210_UPLOAD and K210_ADD_PADDING
            idx = idx if op < 0.95 else idx[:, 0, 0]
            v = rng.integers(0, 256, idx.shape).astype(np.uint8)
            lazy[idx] = v
            eager[idx] = v
    lazy.flush()
    np.testing.assert_array_equal(lazy.bytes, eager)
    assert hits > 0 and deferred > 0    # some reads were served without touching the bytes, some deferred
