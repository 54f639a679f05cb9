"""The BOOT button (IO16) as a script of timed presses with contact bounce.

The pin idles high (pull-up) and reads 0 while pressed. Every press and release is a burst of edges: the level
flips `bounce` extra times within `bounce_ms`, then settles, which is what a real tactile switch does and what
the device's debouncing must absorb.
"""
import bisect
from dataclasses import dataclass, field


@dataclass
class Press:
    at_ms: float
    hold_ms: float = 120.0
    bounce: int = 3           # extra flips on each transition
    bounce_ms: float = 4.0    # span of the bounce burst


@dataclass
class Button:
    presses: list = field(default_factory=list)
    _edges: list = field(default_factory=list, repr=False)   # sorted [(t_us, level)]

    def __post_init__(self):
        self._rebuild()

    def press(self, at_ms: float, hold_ms: float = 120.0, bounce: int = 3, bounce_ms: float = 4.0) -> Press:
        p = Press(at_ms, hold_ms, bounce, bounce_ms)
        self.presses.append(p)
        self._rebuild()
        return p

    def _rebuild(self):
        edges = []
        for p in sorted(self.presses, key=lambda p: p.at_ms):
            for start, settle in ((p.at_ms, 0), (p.at_ms + p.hold_ms, 1)):
                level = settle
                n = 2 * p.bounce + 1           # odd: ends on the settled level
                for i in range(n):
                    t = start + (p.bounce_ms * i / max(1, n - 1) if p.bounce else 0.0)
                    edges.append((int(round(t * 1000)), level))
                    level ^= 1
        edges.sort(key=lambda e: e[0])
        self._edges = edges

    def level(self, t_us: int) -> int:
        i = bisect.bisect_right(self._edges, (t_us, 2))
        return self._edges[i - 1][1] if i else 1

    def edges_between(self, t0_us: int, t1_us: int) -> list:
        """Edges in (t0, t1] as [(t_us, new_level)], keeping only real level changes."""
        out = []
        lvl = self.level(t0_us)
        i = bisect.bisect_right(self._edges, (t0_us, 2))
        while i < len(self._edges) and self._edges[i][0] <= t1_us:
            t, new = self._edges[i]
            if new != lvl:
                out.append((t, new))
                lvl = new
            i += 1
        return out
