"""MicroPython 1.11's standard modules as MaixPy ships them, bound to one board.

Only what the port enables (mpconfigport.h): e.g. uhashlib has sha256 only and no hexdigest(); ujson raises
ValueError("syntax error in JSON"); utime ticks wrap at 2**30; os is uos (weak link).
"""
import array as host_array
import binascii as host_binascii
import collections as host_collections
import errno as host_errno
import hashlib as host_hashlib
import heapq as host_heapq
import io as host_io
import json as host_json
import math as host_math
import cmath as host_cmath
import random as host_random
import re as host_re
import struct as host_struct

from host_tools.sim.clock import TICKS_PERIOD
from host_tools.sim.firmware.runtime import Runtime, make_module


# ---- utime / time ----
def build_utime(rt: Runtime):
    clk = rt.clock

    def ticks_diff(a, b):
        half = TICKS_PERIOD // 2
        return ((a - b + half) % TICKS_PERIOD) - half

    def ticks_add(a, delta):
        return (a + delta) % TICKS_PERIOD

    def sleep(s):
        rt.sleep_us(float(s) * 1e6)

    def sleep_ms(ms):
        if ms < 0:
            raise ValueError("sleep length must be non-negative")
        rt.sleep_us(int(ms) * 1000)

    def sleep_us(us):
        rt.sleep_us(int(us))

    class clock:
        """time.clock(): tick() marks a frame start, fps() averages over up to ~2 s like OpenMV's py_clock."""
        def __init__(self):
            self.t_start = clk.ticks_ms()
            self.t_ticks = 0
            self.t_frame = 0

        def tick(self):
            rt.checkpoint()
            self.t_start = clk.ticks_ms()

        def fps(self):
            rt.checkpoint()
            self.t_frame += 1
            self.t_ticks += ticks_diff(clk.ticks_ms(), self.t_start)
            fps = 1000.0 / (self.t_ticks / self.t_frame) if self.t_ticks > 0 else 0.0
            if self.t_ticks >= 2000:
                self.t_ticks = 0
                self.t_frame = 0
            return fps

        def avg(self):
            return self.t_ticks / self.t_frame if self.t_frame else 0.0

        def reset(self):
            self.t_start = clk.ticks_ms()
            self.t_ticks = 0
            self.t_frame = 0

    def localtime(secs=None):
        import time as host_time
        s = int(clk.now_us // 1_000_000) if secs is None else int(secs)
        t = host_time.gmtime(s + 946684800)   # the board's epoch is 2000-01-01
        return (t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, t.tm_wday, t.tm_yday - 1)

    attrs = dict(ticks_ms=clk.ticks_ms, ticks_us=clk.ticks_us, ticks_cpu=clk.ticks_us, ticks_diff=ticks_diff,
                 ticks_add=ticks_add, sleep=sleep, sleep_ms=sleep_ms, sleep_us=sleep_us,
                 time=lambda: int(clk.now_us // 1_000_000), localtime=localtime)
    mod = make_module(rt, "utime", attrs)
    mod.clock = clock
    return mod


# ---- gc ----
def build_gc(rt: Runtime):
    state = {"enabled": True}

    def collect():
        rt.gc_collect()

    def threshold(n=None):
        # gc.threshold(n): gc_alloc collects once n bytes were allocated since the last collection; -1 turns it off
        if n is None:
            return -1 if rt.gc.threshold is None else rt.gc.threshold
        rt.gc.threshold = None if n < 0 else int(n)

    return make_module(rt, "gc", dict(
        collect=collect, mem_free=rt.gc.free, mem_alloc=rt.gc.used,
        enable=lambda: state.__setitem__("enabled", True), disable=lambda: state.__setitem__("enabled", False),
        isenabled=lambda: state["enabled"], threshold=threshold))


# ---- uos / os ----
def build_uos(rt: Runtime):
    fs = rt.fs

    def listdir(path=None):
        return fs.listdir(path)

    def ilistdir(path=None):
        for name in fs.listdir(path):
            full = (path or fs.cwd).rstrip("/") + "/" + name
            yield (name, fs.stat(full)[0], 0)

    def getcwd():
        return fs.cwd

    def uname():
        return ("MaixPy", "MaixPy", "0.6.2", "v0.6.2 on 2021-01-01", "Sipeed_M1 with kendryte-k210")

    def urandom(n):
        return bytes(host_random.Random(rt.clock.now_us).getrandbits(8) for _ in range(n))

    def flash_format():
        for f in fs.flash_root.iterdir():
            if f.is_file():
                f.unlink()

    return make_module(rt, "uos", dict(
        listdir=listdir, ilistdir=ilistdir, mkdir=fs.mkdir, rmdir=fs.rmdir, chdir=fs.chdir, getcwd=getcwd,
        remove=fs.remove, rename=fs.rename, stat=fs.stat, statvfs=fs.statvfs, sync=lambda: None,
        flash_format=flash_format, uname=uname, urandom=urandom, sep="/"))


# ---- ujson ----
def build_ujson(rt: Runtime):
    def loads(s):
        if isinstance(s, (bytes, bytearray)):
            s = bytes(s).decode("utf-8")
        try:
            return host_json.loads(s)
        except ValueError:
            raise ValueError("syntax error in JSON") from None

    def load(stream):
        return loads(stream.read())

    def dumps(obj):
        try:
            return host_json.dumps(obj)
        except TypeError as e:
            raise TypeError(str(e)) from None

    def dump(obj, stream):
        stream.write(dumps(obj))

    return make_module(rt, "ujson", dict(loads=loads, load=load, dumps=dumps, dump=dump))


# ---- small wrappers over CPython's equivalents (same behaviour for what MicroPython offers) ----
def build_ustruct(rt):
    return make_module(rt, "ustruct", dict(pack=host_struct.pack, unpack=host_struct.unpack,
                                           pack_into=host_struct.pack_into, unpack_from=host_struct.unpack_from,
                                           calcsize=host_struct.calcsize))


def build_ubinascii(rt):
    def hexlify(data, sep=None):
        h = host_binascii.hexlify(bytes(data))
        if sep is None:
            return h
        sep = sep if isinstance(sep, bytes) else str(sep).encode()
        return sep.join(h[i:i + 2] for i in range(0, len(h), 2))

    return make_module(rt, "ubinascii", dict(
        hexlify=hexlify, unhexlify=host_binascii.unhexlify, a2b_base64=host_binascii.a2b_base64,
        b2a_base64=host_binascii.b2a_base64, crc32=host_binascii.crc32))


def build_uhashlib(rt):
    class sha256:
        """MaixPy's hardware SHA-256 (uhashlib_maix): update() and digest() only, no hexdigest()."""
        def __init__(self, data=b""):
            self._h = host_hashlib.sha256(bytes(data))

        def update(self, data):
            rt.checkpoint()
            self._h.update(bytes(data))

        def digest(self):
            rt.checkpoint()
            return self._h.digest()

    mod = make_module(rt, "uhashlib", {})
    mod.sha256 = sha256
    return mod


def build_micropython(rt):
    def const(x):
        return x

    def schedule(fn, arg):
        if not rt.schedule(fn, arg):
            raise RuntimeError("schedule queue full")

    def kbd_intr(ch):
        rt.kbd_intr_char = ch

    def mem_info(verbose=None):
        rt.write("stack: 1024 out of 32768\r\nGC: total: %d, used: %d, free: %d\r\n"
                 % (rt.gc.size, rt.gc.used(), rt.gc.free()))

    return make_module(rt, "micropython", dict(
        const=const, schedule=schedule, kbd_intr=kbd_intr, mem_info=mem_info,
        alloc_emergency_exception_buf=lambda n: None, opt_level=lambda *a: 0, heap_lock=lambda: None,
        heap_unlock=lambda: None, qstr_info=lambda *a: None, stack_use=lambda: 1024))


def build_sys(rt, session):
    class _Std:
        def write(self, s):
            # MicroPython's stdout takes any buffer too and sends its bytes as they are (ampy's get relies on it)
            rt.write(bytes(s).decode("utf-8", "replace") if isinstance(s, (bytes, bytearray, memoryview)) else str(s))
            return len(s)

        def flush(self):
            pass

    impl = type("implementation", (), {"name": "micropython", "version": (0, 6, 2)})
    mod = make_module(rt, "sys", dict(exit=session.sys_exit, print_exception=session.print_exception))
    mod.path = ["", ".", "/flash"]
    mod.modules = session.device_modules
    mod.argv = []
    mod.platform = "MaixPy"
    mod.version = "3.4.0"
    mod.version_info = (3, 4, 0)
    mod.implementation = impl
    mod.maxsize = 2 ** 63 - 1
    mod.byteorder = "little"
    mod.stdout = mod.stderr = _Std()
    mod.stdin = host_io.StringIO("")
    return mod


def _plain(name, host, names):
    def build(rt):
        return make_module(rt, name, {n: getattr(host, n) for n in names if hasattr(host, n)})
    return build


MATH_NAMES = ("e", "pi", "inf", "nan", "sqrt", "pow", "exp", "log", "log10", "log2", "cos", "sin", "tan", "acos",
              "asin", "atan", "atan2", "ceil", "copysign", "fabs", "floor", "fmod", "frexp", "ldexp", "modf",
              "isfinite", "isinf", "isnan", "trunc", "radians", "degrees", "cosh", "sinh", "tanh", "acosh",
              "asinh", "atanh", "erf", "erfc", "gamma", "lgamma", "expm1", "log1p")

PLAIN = {
    "math": _plain("math", host_math, MATH_NAMES),
    "cmath": _plain("cmath", host_cmath, ("e", "pi", "cos", "sin", "exp", "log", "log10", "phase", "polar",
                                          "rect", "sqrt")),
    "ucollections": _plain("ucollections", host_collections, ("namedtuple", "OrderedDict", "deque")),
    "uerrno": _plain("uerrno", host_errno, ("EPERM", "ENOENT", "EIO", "EBADF", "EAGAIN", "ENOMEM", "EACCES",
                                            "EEXIST", "ENODEV", "EISDIR", "EINVAL", "ENOSPC", "ETIMEDOUT",
                                            "errorcode")),
    "uheapq": _plain("uheapq", host_heapq, ("heappush", "heappop", "heapify")),
    "ure": _plain("ure", host_re, ("compile", "match", "search", "sub", "DEBUG")),
    "uio": _plain("uio", host_io, ("BytesIO", "StringIO", "IOBase")),
    "array": _plain("array", host_array, ("array",)),
}


def build_urandom(rt):
    r = host_random.Random(0)   # deterministic like a fresh board without a seed call
    return make_module(rt, "urandom", dict(getrandbits=r.getrandbits, seed=r.seed, randint=r.randint,
                                           randrange=r.randrange, random=r.random, uniform=r.uniform,
                                           choice=r.choice))
