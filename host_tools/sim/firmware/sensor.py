"""sensor: the OV2640 on the DVP, fed by the board's camera scene.

snapshot() (TypeError "not found sensor" before reset()) returns the frame buffer (the same memory every call,
as on the board) holding the RGB565 picture plus the planar RGB888 AI buffer the KPU reads. The AI bytes are the scene's 8-bit RGB (the DVP converts the
sensor's output to both formats; whether its 8-bit planes keep more than 5/6 bits is unknown, 8 bits assumed).
set_windowing((w, h)) crops the frame centre (multiples of 8, py_sensor.c's texts); width()/height() still
report the frame size.
"""
import numpy as np

from host_tools.k210 import pixels as col
from host_tools.sim.clock import COSTS
from host_tools.sim.firmware.image import GRAYSCALE, RGB565
from host_tools.sim.firmware.runtime import Runtime, make_module

FRAMESIZES = {  # constant -> (w, h); values are this simulator's, only their names are the firmware's
    "QQQVGA": (80, 60), "QQVGA": (160, 120), "QVGA": (320, 240), "VGA": (640, 480), "QQCIF": (88, 72),
    "QCIF": (176, 144), "CIF": (352, 288), "B64X64": (64, 64), "B128X128": (128, 128), "B240X240": (240, 240),
}


def build_sensor(rt: Runtime, image_mod):
    st = {"reset": False, "fmt": RGB565, "size": (320, 240), "window": None, "hmirror": False, "vflip": False,
          "fb": None, "last": -1}
    converted = {}   # the camera holds a picture for a while: convert each view of it once
    sizes = {i + 1: v for i, v in enumerate(FRAMESIZES.values())}

    def reset(freq=None, set_regs=True, dual_buff=False):
        if not rt.board.camera_present:
            raise OSError("Reset Failed")
        rt.charge_camera()
        st.update(reset=True, fmt=RGB565, size=(320, 240), window=None, hmirror=False, vflip=False, fb=None)
        rt.advance(50_000)

    def set_pixformat(fmt, set_regs=True):
        if fmt not in (RGB565, GRAYSCALE):
            raise OSError("Pixel format is not supported!")   # PY_ASSERT_TRUE_MSG raises OSError
        st["fmt"] = fmt
        st["fb"] = None
        return True

    def set_framesize(fs, set_regs=True):
        if fs not in sizes:
            raise OSError(-1)
        st["size"] = sizes[fs]
        st["window"] = None
        st["fb"] = None

    def set_windowing(roi):
        roi = tuple(int(v) for v in roi)
        fw, fh = st["size"]
        if len(roi) == 2:
            w, h = roi
            x, y = fw // 2 - w // 2, fh // 2 - h // 2
        elif len(roi) == 4:
            x, y, w, h = roi
        else:
            raise ValueError("The tuple/list must either be (x, y, w, h) or (w, h)")
        if w < 8 or h < 8:
            raise ValueError("The selected window is too small")
        if x < 0 or x + w > fw or y < 0 or y + h > fh:
            raise ValueError("The selected window is outside the bounds of the frame")
        if w % 8 or h % 8:
            raise ValueError("value must be multiple of 8")
        st["window"] = (x, y, w, h)
        st["fb"] = None
        return True

    def need_reset():
        if not st["reset"]:
            raise TypeError("not found sensor")

    def snapshot():
        # Frames finish every 1/camera_fps s; the DVP is double-buffered, so a frame finished since the last
        # snapshot comes back at once and otherwise snapshot() waits for the next one: FPS <= the sensor's.
        need_reset()
        period = 1e6 / COSTS["camera_fps"]
        ready = int(rt.clock.now_us // period)
        if ready <= st["last"]:
            ready = st["last"] + 1
            rt.advance(ready * period - rt.clock.now_us)
        st["last"] = ready
        rt.advance(COSTS["snapshot_us"])
        fw, fh = st["size"]
        rgb = full = rt.board.camera.frame(rt.clock.ms, fw, fh)
        key = (id(full), st["window"], st["hmirror"], st["vflip"], st["fmt"])
        hit = converted.get(key)
        if hit is not None and hit[0] is full:
            _, px, ai = hit
            return fill_fb(px.copy(), ai.copy())
        if st["window"] is not None:
            x, y, w, h = st["window"]
            rgb = rgb[y:y + h, x:x + w]
        if st["hmirror"]:
            rgb = rgb[:, ::-1]
        if st["vflip"]:
            rgb = rgb[::-1]
        px, ai = col.sensor_frame(rgb, st["fmt"] == GRAYSCALE)
        converted.clear()
        converted[key] = (full, px, ai)   # holding `full` keeps its id from being reused
        return fill_fb(px.copy(), ai.copy())

    def fill_fb(px, ai):
        h, w = px.shape
        fb = st["fb"]
        if fb is None or fb.width() != w or fb.height() != h or fb._px.dtype != px.dtype:
            fb = image_mod.Image(_px=px, _fb=True)
            st["fb"] = fb
        fb._px, fb._ai = px, ai
        return fb

    def skip_frames(n=None, time=None):
        # py_sensor_skip_frames: no argument -> 300 ms of frames; n frames, cut short by time= when given
        need_reset()
        if n is None:
            ms = 300 if time is None else int(time)
        else:
            ms = int(n) * 1000.0 / COSTS["camera_fps"]
            if time is not None:
                ms = min(ms, int(time))
        rt.advance(ms * 1000, sleeping=True)

    def width():
        return st["size"][0]

    def height():
        return st["size"][1]

    def ignore(*a, **k):
        return None

    attrs = dict(reset=reset, set_pixformat=set_pixformat, set_framesize=set_framesize,
                 set_windowing=set_windowing, snapshot=snapshot, skip_frames=skip_frames, width=width,
                 height=height, run=lambda enable=1: True,
                 set_hmirror=lambda e=True: st.__setitem__("hmirror", bool(e)),
                 set_vflip=lambda e=True: st.__setitem__("vflip", bool(e)),
                 get_id=lambda: 0x2642, set_contrast=ignore, set_brightness=ignore, set_saturation=ignore,
                 set_auto_gain=ignore, set_auto_whitebal=ignore, set_auto_exposure=ignore,
                 set_gainceiling=ignore, shutdown=ignore, sleep=ignore, set_colorbar=ignore)
    mod = make_module(rt, "sensor", attrs)
    mod.RGB565, mod.GRAYSCALE = RGB565, GRAYSCALE
    for i, name in enumerate(FRAMESIZES):
        setattr(mod, name, i + 1)
    return mod
