"""KPU: MaixPy's kmodel runtime (Maix/Maix_kpu.c) on top of the KPU emulator in host_tools.kmodel.

Behaviour and texts follow Maix_kpu.c (functions named) and maixpy-firmware-facts.md:
- load(int offset | str path with ".kmodel") (py_kpu_class_load), load_flash(addr, is_dual_buf, batch_size,
  spi_speed) (py_kpu_class_load_flash) for a big-endian model in the flash image; errors ValueError
  "[MAIXPY]kpu: load error:<code>, <text>" (get_kpu_err_str; these texts have no "\r\n").
- at most 5 models at once (2009); the model's system-heap need against the firmware build (2006); V4 loads
  only where the build allows it (else 2002 with the build's text), and runs on host_tools.kmodel's V4 emulator.
- V4 outputs (Maix_kpu.c's kmodel_type 4 branches): the fmap is always typecode 'f' and its w/h/ch are the ones
  kpu.set_outputs(task, idx, w, h, ch) gave (w*h*ch floats must fill the output, else it prints why and returns
  False); without them forward raises OSError "sipeed_kpu_get_outputs_shape err" and run_yolo2's region layer
  cannot start (ValueError "region_layer_init err!"): the closed-source library's answer there is unknown, this
  is the conservative one.
- forward() (py_kpu_forward) returns a new fmap object (on the GC heap) over the model's output memory, so the
  next forward overwrites it (as on the board); fmap[:] is a tuple, step slices raise OSError (py_fmap_subscr).
  The fmap describes the LAST layer run: a KPU conv gives its register shape and typecode 'B' (raw uint8), any
  other layer h=1, ch=1, w=bytes (get_typecode_size always answers 1) and that layer's type's typecode.
- the input check (check_img_format): AI buffer present, w/h equal to the model input, RGB565 -> 3 channels,
  gray -> 1; it prints a line and raises ValueError "[MAIXPY]kpu: check img format err!\r\n" (this and the other
  run-time texts end with "\r\n").
- run_yolo2 (py_kpu_class_run_yolo2) returns None, not [], when nothing is found.
- a kpu_net dropped without deinit is freed only when the GC collects it (py_kpu_net_del prints
  "kpu_net __del__"), like MicroPython's finaliser.
"""
import hashlib
import struct
import weakref
from collections import OrderedDict

import numpy as np

from host_tools.k210 import cost
from host_tools.k210 import errors as E
from host_tools.k210.bigendian import LDMK, from_flash_image, v4_extent
from host_tools.k210.memory import FMAP_OBJ_BYTES, NET_OBJ_BYTES
from host_tools.k210.firmware import MAX_MODELS
from host_tools.kmodel import board_time
from host_tools.kmodel import KmodelError, netinfo, parse, run as kmodel_run
from host_tools.kmodel.reader import fmap_shape
from host_tools.kmodel.yolo import region_decode
from host_tools.sim.firmware.image import GRAYSCALE, RGB565
from host_tools.sim.firmware.runtime import Runtime, make_module



_PARSED = OrderedDict()   # digest -> (Kmodel, NetInfo): parsed once per process, so the emulator's per-model
                          # conv plans survive a board's 1,000 model switches


def parse_cached(data: bytes, name: str):
    """(Kmodel, NetInfo, digest) of kmodel bytes; KmodelError as host_tools.kmodel raises it."""
    key = hashlib.blake2b(data, digest_size=16).digest()
    hit = _PARSED.get(key)
    if hit is None:
        model = parse(data, name)
        hit = (model, netinfo(model), key)
        _PARSED[key] = hit
        if len(_PARSED) > 8:
            _PARSED.popitem(last=False)
    else:
        _PARSED.move_to_end(key)
    return hit


def v3_extent(buf, offset: int):
    """Bytes a V3 kmodel at `offset` spans, from its header and layer headers; None when it does not look like
    one (the reader then reports why)."""
    try:
        version, _, _, n_layers, _, _, n_out = struct.unpack_from("<7I", buf, offset)
        if version != 3 or n_layers > 4096 or n_out > 64:
            return None
        pos = offset + 28 + 8 * n_out
        sizes = struct.unpack_from("<%dI" % (2 * n_layers), buf, pos)
        return 28 + 8 * n_out + 8 * n_layers + sum(sizes[1::2])
    except struct.error:
        return None


class _Slot:
    """What a loaded model holds on the board; shared by the kpu_net and its finalizer."""
    def __init__(self, model, heap_handle, flash_mode, key):
        self.model, self.heap, self.flash_mode, self.key = model, heap_handle, flash_mode, key
        self.spi_hz = board_time.LOAD_FLASH_SPI_HZ
        self.batch = cost.LOAD_FLASH_BATCH      # load_flash's batch_size: how the dual buffer groups layers
        self._forward_us = None
        self.live = True
        self.layers = len(model.layers)
        self.outputs = None          # list of numpy buffers, reused by every forward
        self.yolo = None             # (threshold, nms, anchor_num, anchors)
        self.shapes = {}             # V4: output index -> (ch, h, w) from kpu.set_outputs

    def forward_us(self):
        """Board time of one kpu.forward (host_tools.k210.cost through kmodel.board_time), computed once."""
        if self._forward_us is None:
            self._forward_us = board_time.forward_us(self.model, self.flash_mode, self.spi_hz, self.batch)
        return self._forward_us


def build_kpu(rt: Runtime, image_mod):
    slots = []                      # live models in load order
    cache = OrderedDict()           # (model key, layers, input digest) -> outputs; the emulator is pure

    def fail(code, text=None, what="load"):
        raise ValueError(E.load_error(code, what, text))

    def parse_or_fail(data, name, what):
        if len(data) >= 8 and struct.unpack_from("<2I", data) == (LDMK, 4) \
                and 4 not in rt.board.profile.kmodel_versions:
            fail(E.ERR_KMODEL_VERSION, rt.board.profile.version_error, what)    # checked before the file's body
        try:
            m, info, key = parse_cached(data, name)
        except KmodelError as e:
            if e.code == E.ERR_KMODEL_VERSION:
                fail(E.ERR_KMODEL_VERSION, rt.board.profile.version_error, what)
            fail(e.code if e.code in E.TEXT else E.ERR_UNKNOWN, None, what)
        return m, (info, key)

    def register(model, key, heap_bytes, flash_mode, addr, path, what):
        if sum(1 for s in slots if s.live) >= MAX_MODELS:
            fail(E.ERR_MODELS_FULL, None, what)
        h = rt.sys.alloc("kmodel:%s" % model.name, heap_bytes)
        if h is None:
            fail(E.ERR_NO_MEM, None, what)
        slot = _Slot(model, h, flash_mode, key)
        slots.append(slot)
        net = KpuNet(slot, addr, path)
        rt.gc.alloc(net, NET_OBJ_BYTES, xalloc=False)                   # m_new_obj_with_finaliser(py_kpu_net_obj_t)
        weakref.finalize(net, rt.finalizers.append, lambda s=slot: finalize(s))
        return net

    def release(slot):
        if slot.live:
            slot.live = False
            rt.sys.release(slot.heap)
            slots.remove(slot)

    def finalize(slot):
        rt.write("kpu_net __del__\r\n")
        release(slot)

    class KpuNet:
        def __init__(self, slot, addr, path):
            self._slot, self._addr, self._path = slot, addr, path

        def model_addr(self):
            return self._addr

        def model_size(self):
            return self._slot.model.size

        def model_path(self):
            return self._path

        def net_arg(self):
            return None

        def __repr__(self):
            return '{"model_addr": %d, "model_size": %d, "model_path": "%s", "net_args": "(null)"}' % (
                self._addr or 0, self._slot.model.size, self._path)

    # ---- loading ----
    def load(x, *a, **k):
        if type(x) is int:
            if x <= 0:
                raise ValueError("[MAIXPY]kpu: model_addr must > 0 ")
            n = v3_extent(rt.board.flash, x) or v4_extent(rt.board.flash, x) or min(4096, len(rt.board.flash) - x)
            data = bytes(rt.board.flash[x:x + n])
            model, (info, key) = parse_or_fail(data, "flash@0x%X" % x, "load")
            net = register(model, key, info.heap, None, x, None, "load")
        elif type(x) is str:
            if not any(s in x for s in (".kmodel", ".smodel", ".emodel")):
                raise ValueError("[MAIXPY]kpu: model format don't match, only supply .kmodel ")
            if ".kmodel" not in x:
                raise NotImplementedError("simulated MaixPy: encrypted models (.smodel/.emodel) are not simulated")
            try:
                data = rt.fs.read_bytes(x)
            except OSError:
                fail(E.ERR_READ_FILE, None, "load")
            model, (info, key) = parse_or_fail(data, x, "load")
            net = register(model, key, info.heap, None, None, x, "load")
        else:
            raise TypeError("[MAIXPY]kpu: only accept int or string")
        rt.advance(cost.kpu_load_us(model.size))
        return net

    def load_flash(addr, is_dual_buf, batch_size, spi_speed):
        if not all(type(v) is int for v in (addr, is_dual_buf, batch_size, spi_speed)):
            raise ValueError("[MAIXPY]kpu: load_flash arg format error: "
                             "task=kpu.load_flash(flash_addr, is_dual_buf, batch_size, spi_speed)")
        if addr <= 0:
            raise ValueError("[MAIXPY]kpu: model_addr must > 0 ")
        data = from_flash_image(rt.board.flash, addr)
        if data is None:
            fail(E.ERR_KMODEL_VERSION, rt.board.profile.version_error, "load_flash")
        model, (info, key) = parse_or_fail(data, "flash@0x%X (big-endian)" % addr, "load_flash")
        # weights stream from flash: the heap holds main memory and the streaming buffers (netinfo's estimate)
        net = register(model, key, info.heap_flash, "dual" if is_dual_buf else "single", addr, None, "load_flash")
        if spi_speed > 0:                   # the firmware's own limit on it is not simulated
            net._slot.spi_hz = spi_speed
        net._slot.batch = batch_size
        rt.advance(cost.load_flash_load_us(net._slot.spi_hz))
        return net

    def need_net(task):
        if not isinstance(task, KpuNet):
            raise TypeError("[MAIXPY]kpu: kpu_net type error")
        return task._slot

    def deinit(task):
        slot = need_net(task)
        release(slot)
        return True

    # ---- running ----
    def check_img(slot, img):
        m = slot.model
        if m.input_is_float:
            raise ValueError("[MAIXPY]kpu: first layer not conv layer!\r\n")
        c, h, w = m.input_shape
        msg = None
        if img._ai is None:
            msg = "[MAIXPY]kpu: pix_ai is NULL!"
        elif img.width() != w or img.height() != h:
            msg = "[MAIXPY]kpu: img w=%d,h=%d, but model w=%d,h=%d" % (img.width(), img.height(), w, h)
        elif img.format() == GRAYSCALE and c != 1:
            msg = "[MAIXPY]kpu: grayscale img, but model channel=%d" % c
        elif img.format() == RGB565 and c != 3:
            msg = "[MAIXPY]kpu: RGB img, but model channel=%d" % c
        if msg is not None:
            rt.write(msg + "\r\n")
            raise ValueError("[MAIXPY]kpu: check img format err!\r\n")
        return img._ai

    def execute(slot, x):
        if not slot.live:
            raise OSError(E.text(E.ERR_PARAM))   # a deinit'ed model: the board would run a NULL context
        x = np.ascontiguousarray(x)
        key = (slot.key, slot.layers, hashlib.blake2b(x.tobytes(), digest_size=16).digest(), x.dtype.str)
        outs = cache.get(key)
        if outs is None:
            try:
                outs = kmodel_run(slot.model, x, upto=slot.layers if slot.layers < len(slot.model.layers) else None)
            except KmodelError as e:
                raise OSError(E.TEXT.get(e.code, E.text(E.ERR_RUN_MODEL))) from None
            cache[key] = outs
            if len(cache) > 64:
                cache.popitem(last=False)
        else:
            cache.move_to_end(key)
        if slot.model.version == 4:      # the firmware reads every V4 output as floats
            outs = [np.frombuffer(o.tobytes()[:o.nbytes // 4 * 4], "<f4") for o in outs]
        if slot.outputs is None or len(slot.outputs) != len(outs):
            slot.outputs = [np.zeros(o.size, dtype=o.dtype) for o in outs]
        for buf, o in zip(slot.outputs, outs):
            if buf.size != o.size or buf.dtype != o.dtype:
                raise OSError("sipeed_kpu_get_output err")
            buf[:] = o.reshape(-1)
        rt.advance(slot.forward_us())
        return outs

    def make_fmap(slot, idx):
        if not 0 <= idx < len(slot.outputs):
            raise OSError("sipeed_kpu_get_output err")
        m = slot.model
        if m.version == 4:
            if idx not in slot.shapes:
                raise OSError("sipeed_kpu_get_outputs_shape err")
            ch, h, w = slot.shapes[idx]
            fm = Fmap(slot, slot.outputs[idx], "f", w, h, ch, len(m.layers) - 1)
            rt.gc.alloc(fm, FMAP_OBJ_BYTES, xalloc=False)
            return fm
        last = m.layers[slot.layers - 1]                                # set_layers may end the run early
        code = "B" if last.regs is not None else last.out_dtype
        buf = slot.outputs[idx]
        ch, h, w = fmap_shape(last, buf.nbytes)
        fm = Fmap(slot, buf, code, w, h, ch, slot.layers - 1)
        rt.gc.alloc(fm, FMAP_OBJ_BYTES, xalloc=False)                   # m_new_obj(py_kpu_fmap_obj_t)
        return fm

    def forward(task, img, out_index=0, dma=-1):
        slot = need_net(task)
        if isinstance(img, image_mod.Image):
            x = check_img(slot, img)
        elif isinstance(img, list):
            if not img:
                raise ValueError("[MAIXPY]kpu: check input list format err!\r\n")
            if not slot.model.input_is_float:
                raise NotImplementedError("simulated MaixPy: a float list fed to a conv-first model (the board "
                                          "would read the floats' bytes as pixels)")
            x = np.array([float(v) for v in img], dtype=np.float32)
        else:
            raise ValueError("input not support")
        execute(slot, x)
        return make_fmap(slot, int(out_index))

    def get_output(task, idx):
        if not isinstance(task, KpuNet) or type(idx) is not int:
            raise ValueError("[MAIXPY]kpu: get_output arg format error: get_output(task, int idx)")
        if task._slot.outputs is None:
            raise OSError("get_output err")
        return make_fmap(task._slot, idx)

    def set_layers(task, n):
        slot = need_net(task)
        n = int(n)
        total = len(slot.model.layers)
        if n > total:
            rt.write("err: set layers_length to %d, but max %d\r\n" % (n, total))
            return False
        slot.layers = n if n > 0 else total
        slot.outputs = None
        return True

    def set_outputs(task, idx, w, h, ch):
        if not all(type(v) is int for v in (idx, w, h, ch)) or not isinstance(task, KpuNet):
            raise ValueError("[MAIXPY]kpu: set_outputs arg format error: set_outputs(task, int idx, int w, int h, "
                             "int ch)")
        slot = task._slot
        m = slot.model
        if m.version != 4:            # V3 infers its output shapes: the library answers "not implemented"
            rt.write("[MAIXPY]kpu: set_outputs ctx error, maybe init err:%d\r\n" % 2014)
            return False
        if not 0 <= idx < len(m.outputs):
            rt.write("[MAIXPY]kpu: set_outputs arg value error:kmodel output idx %d out of range\r\n" % idx)
            return False
        if w * h * ch * 4 != m.outputs[idx].size:
            rt.write("[MAIXPY]kpu: set_outputs arg value error: w,c,ch size not match output size\r\n")
            return False
        slot.shapes[idx] = (ch, h, w)
        return True

    def init_yolo2(task, threshold, nms_value, anchor_number, anchor, dma=-1):
        slot = need_net(task)
        threshold, nms_value = float(threshold), float(nms_value)
        if not 0.0 <= threshold <= 1.0:
            raise ValueError("[MAIXPY]kpu: threshold only support 0 to 1")
        if not 0.0 <= nms_value <= 1.0:
            raise ValueError("[MAIXPY]kpu: nms_value only support 0 to 1")
        anchor_number = int(anchor_number)
        if anchor_number <= 0:
            raise ValueError("[MAIXPY]kpu: anchor_number should > 0")
        anchors = list(anchor)
        if len(anchors) != 2 * anchor_number:
            raise ValueError("tuple/list has wrong length")
        slot.yolo = (threshold, nms_value, anchor_number, [float(a) for a in anchors])
        return True

    def run_yolo2(task, img):
        slot = need_net(task)
        if not isinstance(img, image_mod.Image):
            raise TypeError("expected an image")
        x = check_img(slot, img)
        if slot.yolo is None:
            raise ValueError("simulated MaixPy: run_yolo2 before init_yolo2 (the board dereferences a NULL "
                             "region layer)")
        if slot.model.version == 4 and 0 not in slot.shapes:
            raise ValueError("[MAIXPY]kpu: region_layer_init err!\r\n")
        outs = execute(slot, x)
        threshold, nms, _, anchors = slot.yolo
        c, h, w = slot.model.input_shape
        out = outs[0].reshape(slot.shapes[0]) if slot.model.version == 4 else outs[0]
        boxes = region_decode(out, anchors, threshold, nms, w, h)
        rt.advance(cost.region_us(out.size))
        if not boxes:
            return None
        return [Yolo(b) for b in boxes]

    def fmap_image(fm, ch):
        ch = int(ch)
        if ch < 0 or ch >= fm._ch:
            raise ValueError("[MAIXPY]kpu: ch err,input 0~%d\r\n" % fm._ch)
        if fm._code != "B":
            raise ValueError("[MAIXPY]kpu: can't convet float fmap yet\r\n")
        n = fm._w * fm._h
        px = fm._data()[n * ch:n * (ch + 1)].reshape(fm._h, fm._w).copy()
        return image_mod.Image(_px=px, _fb=True)   # wraps the fmap memory: not a GC allocation

    def netinfo(task):
        slot = need_net(task)
        out = []
        for L in slot.model.layers:
            if L.regs is not None:       # a KPU conv (V3 K210_CONV, V4 KPUConv2D)
                r = L.regs
                ci, hi, wi = r.in_shape
                co, ho, wo = r.out_shape
                out.append(NetLayer(L.index, L.type, wi, hi, wo, ho, ci, co, int(r.depthwise),
                                    r.kernel_pool_type_cfg.kernel_type, r.kernel_pool_type_cfg.pool_type,
                                    r.kernel_load_cfg.para_size))
            else:
                out.append(NetLayer(L.index, L.type, 0, 0, 0, 0, 0, 0, 0, 0, 0, L.body_size))
        return out

    def memtest():
        rt.write("###free gc heap memory : %d KB\r\n" % (rt.gc.free() // 1024))
        rt.write("###free sys heap memory: %d KB\r\n" % (rt.sys.free() // 1024))

    class Fmap:
        def __init__(self, slot, buf, code, w, h, ch, index):
            self._slot, self._buf, self._code = slot, buf, code
            self._w, self._h, self._ch, self._index = w, h, ch, index

        def _data(self):
            if not self._slot.live:
                raise OSError("simulated MaixPy: fmap read after kpu.deinit (the board reads freed memory)")
            return self._buf

        def __getitem__(self, i):
            rt.checkpoint()
            d = self._data()
            if isinstance(i, slice):
                if i.step not in (None, 1):
                    raise OSError("only slices with step=1 (aka None) are supported")
                vals = d[i]
                return tuple(float(v) for v in vals) if self._code == "f" else tuple(int(v) for v in vals)
            if not isinstance(i, int):
                raise TypeError("array indices must be integers")
            if not -d.size <= i < d.size:
                raise IndexError("array index out of range")
            return float(d[i]) if self._code == "f" else int(d[i])

        def __len__(self):
            raise TypeError("object of type 'kpu_fmap' has no len()")

        def __iter__(self):
            # the firmware's fmap has subscr but no iterator; CPython would iterate via __getitem__
            raise TypeError("'kpu_fmap' object isn't iterable")

        def size(self):
            return int(self._buf.nbytes)

        def index(self):
            return self._index

        def w(self):
            return self._w

        def h(self):
            return self._h

        def ch(self):
            return self._ch

        def typecode(self):
            return self._code

        def __repr__(self):
            return '{"fmap": "data"=0x0, "size"=%d, "index": %d, "w": %d, "h": %d, "ch": %d, "typecode": %s}' % (
                self.size(), self._index, self._w, self._h, self._ch, self._code)

    class Yolo:
        def __init__(self, b):
            self._b = b

        def rect(self):
            b = self._b
            return (b.x, b.y, b.w, b.h)

        def x(self):
            return self._b.x

        def y(self):
            return self._b.y

        def w(self):
            return self._b.w

        def h(self):
            return self._b.h

        def value(self):
            return float(self._b.value)

        def classid(self):
            return self._b.classid

        def index(self):
            return self._b.index

        def objnum(self):
            return self._b.objnum

        def __repr__(self):
            b = self._b
            return ('{"x":%d, "y":%d, "w":%d, "h":%d, "value":%f, "classid":%d, "index":%d, "objnum":%d}'
                    % (b.x, b.y, b.w, b.h, b.value, b.classid, b.index, b.objnum))

    class NetLayer:
        def __init__(self, *vals):
            (self._index, self._type, self._wi, self._hi, self._wo, self._ho, self._chi, self._cho, self._dw,
             self._kernel_type, self._pool_type, self._para_size) = vals

        def __getattr__(self, name):
            if name in ("index", "type", "wi", "hi", "wo", "ho", "chi", "cho", "dw", "kernel_type", "pool_type",
                        "para_size"):
                v = self.__dict__["_" + name]
                return lambda: v
            raise AttributeError(name)

        def __repr__(self):
            return ('{"index":%d, "type":%d, "wi":%d, "hi":%d, "wo":%d, "ho":%d, "chi":%d, "cho":%d, "dw":%d, '
                    '"kernel_type":%d, "pool_type":%d, "para_size":%d}' % (
                        self._index, self._type, self._wi, self._hi, self._wo, self._ho, self._chi, self._cho,
                        self._dw, self._kernel_type, self._pool_type, self._para_size))

    mod = make_module(rt, "KPU", dict(
        load=load, load_flash=load_flash, deinit=deinit, forward=forward, get_output=get_output,
        set_layers=set_layers, set_outputs=set_outputs, init_yolo2=init_yolo2, run_yolo2=run_yolo2,
        fmap=fmap_image, fmap_free=lambda fm: None, netinfo=netinfo, memtest=memtest))
    mod._slots = slots          # for tests and the runner: the models the board holds now
    return mod
