"""Maix (GPIO, FPIOA, utils, config), fpioa_manager, board and machine, for a Maix Bit.

The BOOT key sits on IO16. A GPIOHS object sees it only after the FPIOA routes IO16 to that GPIOHS function
(fm.register(board_info.BOOT_KEY, fm.fpioa.GPIOHS0)). GPIO follows Maix/Maix_gpio.c:
- GPIO(n, ...) (mp_maixpy_pin_make_new) returns the one static object of pin n, reconfigured;
- only GPIOHS pins take irq() (Maix_gpio_irq); the handler is scheduled (Maix_gpio_isr_handler ->
  mp_sched_schedule, queue depth 8) and receives the pin object;
- the handler is stored only in the static pin object's `callback` field, which the GC does not scan (the root
  in Maix_gpios_init is commented out): after the next collection a handler nothing else references is freed.
  The simulator holds it weakly from then on; an edge that reaches a freed handler is the crash it would be on
  the board (BoardCrash), since the firmware would call freed memory.
"""
import weakref

from host_tools.sim.clock import COSTS
from host_tools.sim.firmware.runtime import BoardCrash, BoardReset, Runtime, make_module, not_modelled

# K210 FPIOA function numbers (Maix_fpioa.c): GPIOHS0..31 = 24..55, GPIO0..7 = 56..63, RESV0 = 120.
FUNC_GPIOHS0 = 24
FUNC_GPIO0 = 56
FUNC_RESV0 = 120
FREED = object()   # a handler the GC has freed
# gpio_drive_mode_t / gpio_pin_edge_t of the Kendryte SDK
DM_INPUT, DM_PULL_DOWN, DM_PULL_UP, DM_OUTPUT, PULL_NONE = 0, 1, 2, 3, -1
PE_NONE, PE_FALLING, PE_RISING, PE_BOTH = 0, 1, 2, 3


def build_maix(rt: Runtime):
    pinmap = {}     # function -> IO pin

    class FPIOA:
        GPIOHS0 = FUNC_GPIOHS0
        GPIO0 = FUNC_GPIO0
        RESV0 = FUNC_RESV0

        def set_function(self, pin, func):
            rt.checkpoint()
            if not 0 <= int(pin) < 48:
                raise ValueError("Don't have this Pin")
            if not 0 <= int(func) < 256:
                raise ValueError("This function is invalid")
            for f, p in list(pinmap.items()):
                if p == pin:
                    del pinmap[f]
            if func != FUNC_RESV0:
                pinmap[int(func)] = int(pin)

        def get_Pin_num(self, func):
            rt.checkpoint()
            return pinmap.get(int(func))

        def help(self, *a):
            rt.write("FPIOA functions: GPIOHS0..31 = %d..%d, GPIO0..7 = %d..%d\r\n"
                     % (FUNC_GPIOHS0, FUNC_GPIOHS0 + 31, FUNC_GPIO0, FUNC_GPIO0 + 7))

    for i in range(32):
        setattr(FPIOA, "GPIOHS%d" % i, FUNC_GPIOHS0 + i)
    for i in range(8):
        setattr(FPIOA, "GPIO%d" % i, FUNC_GPIO0 + i)

    def io_of(gpio_num):
        """The IO pin routed to GPIOHS n (0..31) or GPIO n (32..39), or None."""
        func = FUNC_GPIOHS0 + gpio_num if gpio_num < 32 else FUNC_GPIO0 + gpio_num - 32
        return pinmap.get(func)

    class GPIO:
        IN, OUT = DM_INPUT, DM_OUTPUT
        PULL_NONE, PULL_UP, PULL_DOWN = PULL_NONE, DM_PULL_UP, DM_PULL_DOWN
        IRQ_NONE, IRQ_FALLING, IRQ_RISING, IRQ_BOTH = PE_NONE, PE_FALLING, PE_RISING, PE_BOTH
        WAKEUP_NOT_SUPPORT = 0

        def __new__(cls, gpio, *args, **kwargs):
            rt.checkpoint()
            if not 0 <= int(gpio) < 40:
                raise ValueError("invalid pin")
            pin = pins.get(int(gpio))
            if pin is None:
                pin = object.__new__(cls)
                pin.num, pin._mode, pin.out = int(gpio), DM_INPUT, 0
                pin._held, pin._ref, pin.trigger = None, None, PE_NONE
                pins[pin.num] = pin
            return pin

        def __init__(self, gpio, mode=DM_INPUT, pull=PULL_NONE, value=None):
            if mode == DM_OUTPUT and pull not in (None, PULL_NONE):
                raise ValueError("When this pin is in output mode, it is not allowed to pull up and down.")
            self._mode = mode
            self.out = 1 if value else 0

        def _level(self):
            io = io_of(self.num)
            if io == 16:
                return rt.board.button.level(rt.clock.now_us)
            # Unknown on the board for unrouted inputs; idle-high keeps a forgotten fm.register from looking
            # like a held key.
            return 1

        def value(self, v=None):
            rt.checkpoint()
            if v is None:
                return self.out if self._mode == DM_OUTPUT else self._level()
            self.out = 1 if v else 0

        def __call__(self, v=None):
            return self.value(v)

        def irq(self, handler=None, trigger=PE_BOTH, wake=None, priority=7):
            rt.checkpoint()
            if self.num >= 32:
                return None   # GPIO (not GPIOHS) pins have no interrupt; the firmware ignores the call
            if wake not in (None, 0):
                raise ValueError("This platform does not support interrupt wakeup")
            self.trigger = trigger if handler is not None else PE_NONE
            self._held = handler          # reachable until the next collection, as on the board
            try:
                self._ref = weakref.ref(handler) if handler is not None else None
            except TypeError:             # a built-in function: firmware ROM, never freed
                self._ref = lambda h=handler: h
            return None

        def disirq(self):
            rt.checkpoint()
            self._held, self._ref = None, None
            self.trigger = PE_NONE

        def mode(self, m=-1):
            if m != -1:
                self._mode = m
            return self._mode

        def handler(self):
            """The handler the static pin object points at: the object, None (no handler) or FREED."""
            if self._ref is None:
                return None
            h = self._ref()
            return FREED if h is None else h

        def __repr__(self):
            return "Pin(%d)" % self.num

    for i in range(32):
        setattr(GPIO, "GPIOHS%d" % i, i)
    for i in range(8):
        setattr(GPIO, "GPIO%d" % i, 32 + i)

    pins = {}      # number -> the static pin object

    def forget_handlers():
        # Maix_gpio_obj[] is not a GC root: from a collection on, only what else references a handler keeps it
        for p in pins.values():
            p._held = None
    rt.gc.on_collect.append(forget_handlers)

    def call_freed(pin):
        raise BoardCrash("GPIOHS%d's IRQ handler was freed by a garbage collection (Maix_gpio.c keeps it only in a "
                         "static array the GC does not scan): the board would now run freed memory. Keep the "
                         "handler referenced from a live object." % pin.num)

    def on_edge(t_us, io, level):
        for p in pins.values():
            if p._ref is None or p.num >= 32 or io_of(p.num) != io:
                continue
            falling = level == 0
            if (p.trigger & PE_FALLING and falling) or (p.trigger & PE_RISING and not falling):
                h = p.handler()
                # a full queue drops the event, like mp_sched_schedule
                rt.schedule(call_freed if h is FREED else h, p)
    rt.irq_hooks.append(on_edge)

    gc_size = {"n": rt.gc.size}

    def gc_heap_size(n=None):
        if n is None:
            return gc_size["n"]
        gc_size["n"] = int(n)   # takes effect after machine.reset() on the board; not modelled further

    def flash_read(addr, size):
        flash = rt.board.flash
        if addr < 0 or size < 0 or addr + size > len(flash):
            raise ValueError("flash_read: 0x%X + %d is outside the 16 MiB flash" % (addr, size))
        return bytes(flash[addr:addr + size])

    utils = make_module(rt, "utils", dict(gc_heap_size=gc_heap_size, heap_free=rt.sys.free, flash_read=flash_read))
    # no flash_write: MaixPy's maix_utils.c has it commented out of the module table
    config = make_module(rt, "config", dict(get_value=lambda key, default=None: default))
    mod = make_module(rt, "Maix", {})
    mod.GPIO, mod.FPIOA, mod.utils, mod.config = GPIO, FPIOA, utils, config
    for name in ("I2S", "FFT", "Audio"):
        setattr(mod, name, not_modelled("Maix." + name))
    mod._fpioa = FPIOA()
    return mod


def build_fpioa_manager(rt: Runtime, maix):
    """fpioa_manager.fm, following the frozen fpioa_manager.py (register warns when a function moves)."""
    fpioa = maix._fpioa

    class fm:
        pass

    def register(pin, function, force=True):
        used = fpioa.get_Pin_num(function)
        if used == pin:
            return
        if used is not None:
            info = "[Warning] function is used by %s(pin:%d)" % (str_function(function), used)
            if not force:
                raise Exception(info)
            rt.write(info + "\r\n")
        fpioa.set_function(pin, function)

    def str_function(function):
        if FUNC_GPIOHS0 <= function <= FUNC_GPIO0 + 7:
            if function >= FUNC_GPIO0:
                return "fm.fpioa.GPIO%d" % (function - FUNC_GPIO0)
            return "fm.fpioa.GPIOHS%d" % (function - FUNC_GPIOHS0)
        return "unknown"

    fm.fpioa = fpioa
    fm.register = staticmethod(register)
    fm.unregister = staticmethod(lambda pin: fpioa.set_function(pin, FUNC_RESV0))
    fm.get_pin_by_function = staticmethod(fpioa.get_Pin_num)
    fm.str_function = staticmethod(str_function)
    fm.help = staticmethod(fpioa.help)
    mod = make_module(rt, "fpioa_manager", {})
    mod.fm = fm
    return mod


def build_board(rt: Runtime):
    class board_info:
        BOOT_KEY = 16
        LED_R, LED_G, LED_B = 13, 12, 14

        @staticmethod
        def set(key, value=None):
            setattr(board_info, key, value)

        @staticmethod
        def all():
            return [k for k in dir(board_info) if not k.startswith("_")]

    mod = make_module(rt, "board", {})
    mod.board_info = board_info
    return mod


def build_machine(rt: Runtime):
    def reset():
        rt.checkpoint()
        raise BoardReset("machine.reset()")

    class WDT:
        """Watchdog: not fed within `timeout` ms -> board reset (checked whenever board time moves)."""
        def __init__(self, id=0, timeout=4000, callback=None, context=None):
            self.timeout_us = int(timeout) * 1000
            self.last = rt.clock.now_us
            self.armed = True
            rt.watchers.append(self._watch)

        def _watch(self, now_us):
            if self.armed and now_us - self.last > self.timeout_us:
                self.armed = False
                raise BoardReset("watchdog")

        def feed(self):
            rt.checkpoint()
            self.last = rt.clock.now_us

        def stop(self):
            self.armed = False

    class Timer:
        TIMER0, TIMER1, TIMER2 = 0, 1, 2
        CHANNEL0, CHANNEL1, CHANNEL2, CHANNEL3 = 0, 1, 2, 3
        MODE_ONE_SHOT, MODE_PERIODIC, MODE_PWM = 0, 1, 2
        UNIT_S, UNIT_MS, UNIT_US, UNIT_NS = 0, 1, 2, 3

        def __init__(self, timer, channel, mode=1, period=1000, unit=1, callback=None, arg=None, start=True,
                     priority=1, div=0):
            scale = {0: 1_000_000, 1: 1000, 2: 1, 3: 0.001}[unit]
            self.period_us = max(1, int(period * scale))
            self.mode, self.callback, self.arg = mode, callback, arg
            self.next = rt.clock.now_us + self.period_us
            self.running = bool(start)
            rt.watchers.append(self._watch)

        def _watch(self, now_us):
            while self.running and self.callback is not None and now_us >= self.next:
                rt.schedule(self.callback, self if self.arg is None else self.arg)
                self.next += self.period_us
                if self.mode == 0:
                    self.running = False

        def start(self):
            self.running = True
            self.next = rt.clock.now_us + self.period_us

        def stop(self):
            self.running = False

        def deinit(self):
            self.running = False
            if self._watch in rt.watchers:
                rt.watchers.remove(self._watch)

    mod = make_module(rt, "machine", dict(reset=reset, soft_reset=reset, freq=lambda *a: 400_000_000,
                                          unique_id=lambda: b"\x00" * 32, idle=lambda: rt.advance(COSTS["call_us"])))
    mod.WDT, mod.Timer = WDT, Timer
    for name in ("UART", "I2C", "SPI", "PWM", "RTC", "Pin"):
        setattr(mod, name, not_modelled("machine." + name))
    return mod
