"""What `import` means inside device code: MaixPy's module table, then files on the board, nothing else.

- Firmware modules (sensor, KPU, utime, ...) come from host_tools/sim/firmware, never from CPython.
- Weak links (os, json, struct, ...) look for a file on sys.path first, then fall back to the u-module, as
  MicroPython 1.11 does with MICROPY_MODULE_WEAK_LINKS.
- Files are searched along the device's sys.path: '' and '.' (the current directory), then /sd (when a card
  is in), then /flash -- what MaixPy's _boot.py sets up.
- Anything else raises ImportError("no module named 'x'"); a module MaixPy has but this simulator does not
  model raises ImportError saying so, rather than pretending.
"""
from host_tools.sim.firmware import image as fw_image, kpu as fw_kpu, lcd as fw_lcd, maix as fw_maix, \
    sensor as fw_sensor, std

# MaixPy's MICROPY_PORT_BUILTIN_MODULE_WEAK_LINKS: name -> the u-module it falls back to
WEAK_LINKS = {"binascii": "ubinascii", "collections": "ucollections", "errno": "uerrno", "heapq": "uheapq",
              "json": "ujson", "math": "math", "os": "uos", "random": "urandom", "re": "ure",
              "struct": "ustruct", "zlib": "uzlib", "hashlib": "uhashlib"}
ALIASES = {"time": "utime"}   # registered twice in the port's module table
NOT_SIMULATED = {"uzlib", "uctypes", "utimeq", "network", "usocket", "socket", "audio", "ucryptolib", "modules",
                 "ussl", "websocket", "webrepl", "ulab", "video", "nes", "lvgl", "touchscreen", "pye_mp",
                 "speech_recognizer", "lodepng"}


def builders(session):
    """name -> callable() building that firmware module for this session (built on first import)."""
    rt = session.rt
    mods = session.fw_modules

    def get(name):
        if name not in mods:
            mods[name] = table[name]()
        return mods[name]

    table = {
        "utime": lambda: std.build_utime(rt),
        "gc": lambda: std.build_gc(rt),
        "uos": lambda: std.build_uos(rt),
        "ujson": lambda: std.build_ujson(rt),
        "ustruct": lambda: std.build_ustruct(rt),
        "ubinascii": lambda: std.build_ubinascii(rt),
        "uhashlib": lambda: std.build_uhashlib(rt),
        "urandom": lambda: std.build_urandom(rt),
        "micropython": lambda: std.build_micropython(rt),
        "sys": lambda: std.build_sys(rt, session),
        "image": lambda: fw_image.build_image(rt),
        "sensor": lambda: fw_sensor.build_sensor(rt, get("image")),
        "lcd": lambda: fw_lcd.build_lcd(rt, get("image")),
        "KPU": lambda: fw_kpu.build_kpu(rt, get("image")),
        "Maix": lambda: fw_maix.build_maix(rt),
        "fpioa_manager": lambda: fw_maix.build_fpioa_manager(rt, get("Maix")),
        "board": lambda: fw_maix.build_board(rt),
        "machine": lambda: fw_maix.build_machine(rt),
    }
    for name, build in std.PLAIN.items():
        table[name] = (lambda b=build: b(rt))
    return table, get


class DeviceImporter:
    def __init__(self, session):
        self.s = session
        self.table, self.get = builders(session)

    def find_file(self, name: str):
        """Device path of name.py along sys.path, or None. A .mpy alone is refused: CPython cannot run it."""
        fs = self.s.rt.fs
        for entry in self.s.sys_path():
            base = fs.cwd if entry in ("", ".") else entry
            for ext in (".py", ".mpy"):
                p = base.rstrip("/") + "/" + name + ext
                if fs.is_file(p):
                    if ext == ".mpy":
                        raise ImportError("simulated MaixPy: %s is compiled bytecode; the simulator runs .py "
                                          "sources only" % p)
                    return p if entry not in ("", ".") else name + ext
        return None

    def __call__(self, name, globals=None, locals=None, fromlist=(), level=0):
        if level:
            raise ImportError("simulated MaixPy: relative import of %r is not supported" % name)
        mods = self.s.device_modules
        if name in mods:
            return mods[name]
        if "." in name:
            raise ImportError("no module named '%s'" % name)
        # built-in modules are not entries of sys.modules on MicroPython; they are cached per session instead
        real = ALIASES.get(name, name)
        if real in self.table and name not in WEAK_LINKS:
            return self.get(real)
        path = self.find_file(name)
        if path is not None:
            return self.s.import_file(name, path)
        fallback = WEAK_LINKS.get(name)
        if fallback in self.table:
            return self.get(fallback)
        if name in NOT_SIMULATED or fallback in NOT_SIMULATED:
            raise ImportError("simulated MaixPy has no model of module '%s' (the firmware has it)" % name)
        raise ImportError("no module named '%s'" % name)
