"""sensor: the camera on the DVP, fed by the board's camera scene (omv/py/py_sensor.c, omv/sensor.c).

- The sensor model is the board's (`Board.sensor`): "ov2640", what most Maix Bits carry (the default), or "gc0328".
- reset(dual_buff=) (sensor_reset -> sensor_init_fb) frees the frame buffers; set_framesize (sensor_set_framesize)
  mallocs them on the system heap again whenever the frame's size changed: one RGB565 frame and one planar RGB888
  AI buffer, two of each with dual_buff=True (host_tools/k210/memory.py camera_buffers); ENOMEM -> OSError(12).
- set_windowing((w, h) | (x, y, w, h)) (py_sensor_set_windowing, then sensor_set_windowing): the checks and texts
  of py_sensor.c, (w, h) meaning the centred window; then only the GC0328 driver crops in the sensor
  (gc0328_set_windowing, QVGA only); otherwise only the DVP's image size changes, and the frame holds the TOP-LEFT
  w x h of what the sensor sends (MaixPy-v1 issue #191). The frame size is then w x h, so the next set_framesize
  reallocates the buffers. width()/height() still report the frame size set.
- snapshot() (sensor_snapshot) returns a new image object on the sensor's buffer (the same memory each call, or
  one of the two with dual buffering), holding the RGB565 (or grayscale) pixels and the planar AI buffer. Timing,
  with the sensor sending a frame every 1/camera_fps s (COSTS): single buffer: snapshot clears the finish flag and
  the DVP converts the next frame that STARTS after the call, so every call waits for that whole frame;
  dual buffer: the DVP fills the free buffer with the first frame that starts once one is free, and snapshot hands
  it over at once when it is complete, else waits for it to complete.
- snapshot before reset: TypeError "not found sensor"; before set_framesize: RuntimeError "Not init!".
The AI bytes are the scene's 8-bit RGB (the DVP writes both formats; whether its 8-bit planes keep more than the
5/6 bits of RGB565 is unknown, 8 bits assumed).
"""

import numpy as np

from host_tools.k210 import pixels as col
from host_tools.k210.memory import camera_buffers
from host_tools.sim.clock import COSTS
from host_tools.sim.firmware.image import GRAYSCALE, RGB565
from host_tools.sim.firmware.runtime import Runtime, make_module

FRAMESIZES = {  # constant -> (w, h); values are this simulator's, only their names are the firmware's
    "QQQVGA": (80, 60), "QQVGA": (160, 120), "QVGA": (320, 240), "VGA": (640, 480), "QQCIF": (88, 72),
    "QCIF": (176, 144), "CIF": (352, 288), "B64X64": (64, 64), "B128X128": (128, 128), "B240X240": (240, 240),
}
SENSORS = {"ov2640": 0x2642, "gc0328": 0x9D}    # model -> get_id()


def build_sensor(rt: Runtime, image_mod):
    model = rt.board.sensor
    if model not in SENSORS:
        raise ValueError("sensor model %r: the simulator has %s" % (model, ", ".join(SENSORS)))
    st = {"reset": False, "dual": False, "fmt": RGB565, "size": None, "frame": None, "crop": None,
          "hmirror": False, "vflip": False, "heap": None, "held": None, "bufs": [], "out": 0, "next": None}
    converted = {}   # the camera holds a picture for a while: convert each view of it once
    sizes = {i + 1: v for i, v in enumerate(FRAMESIZES.values())}
    period = 1e6 / COSTS["camera_fps"]

    def reset(freq=None, set_regs=True, dual_buff=False, choice=None):
        if not rt.board.camera_present:
            raise OSError("Reset Failed")
        free_buffers()
        st.update(reset=True, dual=bool(dual_buff), fmt=RGB565, size=None, frame=None, crop=None, hmirror=False,
                  vflip=False)
        rt.advance(50_000)

    def free_buffers():
        if st["heap"] is not None:
            rt.sys.release(st["heap"])
        st.update(heap=None, held=None, bufs=[], next=None)

    def set_pixformat(fmt, set_regs=True):
        if fmt not in (RGB565, GRAYSCALE):
            raise OSError("Pixel format is not supported!")   # PY_ASSERT_TRUE_MSG raises OSError
        st["fmt"] = fmt
        st["bufs"] = []
        return True

    def set_framesize(fs, set_regs=True):
        if fs not in sizes:
            raise OSError(5)                                   # EIO from the driver
        w, h = sizes[fs]
        if st["held"] != (w, h):                               # sensor_set_framesize: free, then malloc again
            free_buffers()
            handle = rt.sys.alloc("camera", camera_buffers(w, h, st["dual"]))
            if handle is None:
                raise OSError(12)                              # ENOMEM
            st.update(heap=handle, held=(w, h))
        st.update(size=(w, h), frame=(w, h), crop=None, bufs=[])
        start_dvp()

    def frame_start(k):
        return int(round(k * period))

    def first_frame_from(t_us):
        """Index of the first frame that starts at or after t_us."""
        k = int(t_us // period)
        return k if frame_start(k) >= t_us else k + 1

    def start_dvp():
        st["next"] = first_frame_from(rt.clock.now_us)   # the frame the DVP converts next

    def set_windowing(roi):
        roi = tuple(int(v) for v in roi)
        if st["size"] is None:
            raise ValueError("The selected window is outside the bounds of the frame")
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
        in_sensor = model == "gc0328" and (fw, fh) == FRAMESIZES["QVGA"]
        st.update(frame=(w, h), crop=(x, y, w, h) if in_sensor else (0, 0, w, h), held=(w, h), bufs=[])
        return True

    def need_reset():
        if not st["reset"]:
            raise TypeError("not found sensor")
        if st["held"] is None:
            raise RuntimeError("Not init!")

    def wait_for_frame():
        """Advance to the moment snapshot returns; the frame's start time (what the scene showed)."""
        if st["dual"]:
            k = st["next"]                                   # in a buffer already, or being converted
        else:
            k = first_frame_from(rt.clock.now_us)            # only a frame that starts after the call is taken
        done = frame_start(k + 1)
        if done > rt.clock.now_us:
            rt.advance(done - rt.clock.now_us)
        # dual: the buffer just handed back takes the next frame that starts (the one right after this one when
        # snapshot waited for it, else the first one from now: the DVP stopped while both buffers were full)
        st["next"] = max(k + 1, first_frame_from(rt.clock.now_us))
        return frame_start(k)

    def snapshot():
        need_reset()
        start = wait_for_frame()
        rt.advance(COSTS["snapshot_us"])                  # reverse_u32pixel and the hand-over
        px, ai = view(rt.board.camera.frame(start / 1000.0, *st["size"]))
        h, w = px.shape
        if not st["bufs"] or st["bufs"][0][0].shape != px.shape or st["bufs"][0][0].dtype != px.dtype:
            st["bufs"] = [(np.empty_like(px), np.empty_like(ai)) for _ in range(2 if st["dual"] else 1)]
            st["out"] = 0
        st["out"] = (st["out"] + 1) % len(st["bufs"])
        bpx, bai = st["bufs"][st["out"]]
        np.copyto(bpx, px)
        np.copyto(bai, ai)
        img = image_mod.Image(_px=bpx, _fb=True)          # py_image(0, 0, 0, 0): a new object on the buffer
        img._ai = bai
        return img

    def view(full):
        key = (id(full), st["crop"], st["hmirror"], st["vflip"], st["fmt"])
        hit = converted.get(key)
        if hit is not None and hit[0] is full:
            return hit[1], hit[2]
        rgb = full
        if st["crop"] is not None:
            x, y, w, h = st["crop"]
            rgb = rgb[y:y + h, x:x + w]
        if st["hmirror"]:
            rgb = rgb[:, ::-1]
        if st["vflip"]:
            rgb = rgb[::-1]
        px, ai = col.sensor_frame(np.ascontiguousarray(rgb), st["fmt"] == GRAYSCALE)
        converted.clear()
        converted[key] = (full, px, ai)   # holding `full` keeps its id from being reused
        return px, ai

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
        start_dvp()

    def run(enable=1):
        if enable:
            start_dvp()
        return True

    def width():
        return st["size"][0] if st["size"] else 0

    def height():
        return st["size"][1] if st["size"] else 0

    def ignore(*a, **k):
        return None

    attrs = dict(reset=reset, set_pixformat=set_pixformat, set_framesize=set_framesize,
                 set_windowing=set_windowing, snapshot=snapshot, skip_frames=skip_frames, width=width,
                 height=height, run=run,
                 set_hmirror=lambda e=True: st.__setitem__("hmirror", bool(e)),
                 set_vflip=lambda e=True: st.__setitem__("vflip", bool(e)),
                 get_id=lambda: SENSORS[model], set_contrast=ignore, set_brightness=ignore, set_saturation=ignore,
                 set_auto_gain=ignore, set_auto_whitebal=ignore, set_auto_exposure=ignore,
                 set_gainceiling=ignore, shutdown=ignore, sleep=ignore, set_colorbar=ignore)
    mod = make_module(rt, "sensor", attrs)
    mod.RGB565, mod.GRAYSCALE = RGB565, GRAYSCALE
    for i, name in enumerate(FRAMESIZES):
        setattr(mod, name, i + 1)
    return mod
