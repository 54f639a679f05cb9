"""The simulated firmware's run-time core, one per Session: heaps, scheduler, time, interrupts.

Every call from device code into a simulated module passes `checkpoint()`: it charges a little board time,
raises a pending KeyboardInterrupt (Session.interrupt), runs scheduled callbacks (GPIO IRQ handlers are
scheduled with mp_sched_schedule on the board, not called in the ISR) and stops the run when the runner asks.
"""
import functools
import types

from host_tools.k210.firmware import LCD_BUFFERS
from host_tools.sim.clock import COSTS
from host_tools.sim.fs import DeviceFs
from host_tools.sim.heap import GcHeap, SysHeap

SCHEDULER_DEPTH = 8   # MICROPY_SCHEDULER_DEPTH in MaixPy's mpconfigport.h


class StopRun(BaseException):
    """Raised into device code when the runner's stop condition is met (not an Exception: `except Exception`
    in the app does not swallow it)."""


class BoardReset(BaseException):
    """machine.reset() / a watchdog: the Session reboots the board."""


class BoardCrash(BaseException):
    """What the board would do next is undefined (it runs freed memory): the simulation stops and reports it."""


class Runtime:
    def __init__(self, board):
        self.board = board
        self.clock = board.clock
        self.fs = DeviceFs(board.flash_root, board.sd_root)
        prof = board.profile
        self.gc = GcHeap(prof.gc_heap, prof.gc_used_at_boot)
        self.gc.before_sweep = self._host_collect
        self.sys = SysHeap(prof.sys_heap)
        self.queue = []                  # scheduled (callable, arg)
        self.in_callback = False
        self.interrupt_pending = False
        self.kbd_intr_char = 3
        self.stop_reason = None          # set by the runner; checkpoints raise StopRun
        self.stop_check = None           # callable() -> reason or None, polled at checkpoints
        self.finalizers = []             # object finalizers MicroPython would run at the next gc.collect()
        self.collects = 0
        self.irq_hooks = []              # callables(t_us, pin, level) for IO edges (Maix.GPIO installs one)
        self.watchers = []               # callables(now_us) polled after time moves (WDT, Timer)
        self.lcd_buffers = None          # sys-heap handle, charged once by lcd.init
        self.modules = {}                # name -> module, filled by the importer

    # -- time --
    def advance(self, us: float, sleeping: bool = False) -> None:
        """Move board time forward. Button edges in between reach the IRQ hooks at their own times; while
        sleeping, scheduled handlers run right then (the board's sleep polls events), otherwise they wait for
        the next checkpoint, as after a blocking C call."""
        t0 = self.clock.now_us
        t1 = t0 + max(0, int(round(us)))
        for t, level in self.board.button.edges_between(t0, t1):
            self.clock.now_us = t
            for hook in self.irq_hooks:
                hook(t, 16, level)
            if sleeping:
                self.run_pending()
        self.clock.now_us = t1
        for w in list(self.watchers):
            w(t1)

    def sleep_us(self, us: float) -> None:
        self.checkpoint()
        self.advance(us, sleeping=True)
        self.checkpoint(cost=False)

    # -- scheduler --
    def schedule(self, fn, arg) -> bool:
        if len(self.queue) >= SCHEDULER_DEPTH:
            return False
        self.queue.append((fn, arg))
        return True

    def run_pending(self) -> None:
        if self.in_callback:
            return
        while self.queue:
            fn, arg = self.queue.pop(0)
            self.in_callback = True
            try:
                fn(arg)
            finally:
                self.in_callback = False

    # -- the gate every simulated call passes --
    def checkpoint(self, cost: bool = True) -> None:
        if cost:
            self.advance(COSTS["call_us"])
        if self.interrupt_pending:
            self.interrupt_pending = False
            raise KeyboardInterrupt()
        if self.stop_reason is None and self.stop_check is not None:
            self.stop_reason = self.stop_check()
        if self.stop_reason is not None:
            raise StopRun(self.stop_reason)
        self.run_pending()

    # -- memory --
    def gc_collect(self) -> None:
        """gc.collect(): a collection of the GC heap (the same one gc_alloc runs when nothing fits)."""
        self.gc.collect()
        self.advance(COSTS["gc_collect_us"])

    def _host_collect(self) -> None:
        # Simulated objects die by reference counting; the host collector is only needed for ones caught in
        # reference cycles. A full host collection costs milliseconds in a big process, so the young
        # generations are collected every time and everything every 32nd call (deterministic per run).
        import gc as host_gc
        self.collects += 1
        host_gc.collect(2 if self.collects % 32 == 0 else 1)
        pending, self.finalizers = self.finalizers, []
        for fn in pending:
            fn()

    def charge_lcd(self) -> None:
        if self.lcd_buffers is None:
            self.lcd_buffers = self.sys.alloc("lcd", LCD_BUFFERS)
            if self.lcd_buffers is None:
                raise MemoryError("lcd: no system heap left for the LCD buffers")

    # -- console --
    def write(self, text: str) -> None:
        self.board.write_console(text)
        self.advance(COSTS["uart_us_per_char"] * len(text))


def gate(rt: Runtime, fn):
    """Wrap a module-level function so each call passes the checkpoint first."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        rt.checkpoint()
        return fn(*args, **kwargs)
    return wrapper


def make_module(rt: Runtime, name: str, attrs: dict) -> types.ModuleType:
    """A module object named like the firmware's; plain functions are gated, classes and constants are not."""
    mod = types.ModuleType(name)
    for k, v in attrs.items():
        if isinstance(v, (types.FunctionType, types.BuiltinFunctionType, types.MethodType, functools.partial)):
            v = gate(rt, v)
        setattr(mod, k, v)
    return mod


def not_modelled(qualname: str):
    """A firmware class this simulator does not model: creating it or reading its constants raises, naming it,
    instead of pretending."""
    def refuse(*args, **kwargs):
        raise NotImplementedError("simulated MaixPy: %s exists on the board but is not modelled here" % qualname)

    class Meta(type):
        def __getattr__(cls, name):
            refuse()

    return Meta(qualname.rsplit(".", 1)[-1], (), {"__init__": refuse})
