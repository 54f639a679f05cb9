# The camera and a model's input. The sensor takes full QVGA frames, set up once: changing the frame size or the
# window would free and malloc its buffers again between model loads, and set_windowing gives the frame's TOP-LEFT
# corner on the OV2640 most Maix Bits carry. The LCD shows the frame itself. A model's input is taken from the
# frame by its manifest's framing rule (crop_box mirrors host_tools/framing.py's; a test holds them equal): cut the
# region, resize it to the model's size, build the AI buffer the KPU reads.
import gc
import sensor

FRAME_W = 320
FRAME_H = 240
dual = False  # the camera is double-buffered (the next frame is captured while the app works on this one)


def crop_box(src_w, src_h, w, h, framing="crop"):
    """(x, y, cw, ch): the region of a src_w x src_h frame that becomes a w x h model input. "crop": the largest
    centred region with the model's aspect; "stretch": the whole frame."""
    if framing == "stretch" or src_w * h == src_h * w:
        return 0, 0, src_w, src_h
    if src_w * h > src_h * w:  # frame wider than the model: keep its full height
        cw, ch = src_h * w // h, src_h
    else:
        cw, ch = src_w, src_w * h // w
    return (src_w - cw) // 2, (src_h - ch) // 2, cw, ch


class View:
    """How one model's input is taken from a frame, and how its boxes map back onto the frame."""

    def __init__(self, w, h, c, framing="crop"):
        self.w = w
        self.h = h
        self.gray = c == 1
        self.box = crop_box(FRAME_W, FRAME_H, w, h, framing)
        x, y, cw, ch = self.box
        self.whole = self.box == (0, 0, FRAME_W, FRAME_H) and (w, h) == (FRAME_W, FRAME_H)
        self.sx = cw / w  # model pixels -> frame pixels
        self.sy = ch / h

    def to_frame(self, x, y, w, h):
        """A box in model input pixels as (x, y, w, h) in frame pixels."""
        return (int(self.box[0] + x * self.sx), int(self.box[1] + y * self.sy), int(w * self.sx),
                int(h * self.sy))


def start(want_dual=True):
    """Bring the camera up for QVGA frames; double-buffered when want_dual and there is system heap for it, else
    single-buffered. Raises what the firmware raises when there is no camera."""
    global dual
    for d in ((True, False) if want_dual else (False,)):
        try:
            sensor.reset(dual_buff=d)
            sensor.set_pixformat(sensor.RGB565)
            sensor.set_framesize(sensor.QVGA)
            dual = d
            break
        except OSError as e:
            if not d or str(e) == "Reset Failed":  # no camera at all, or single-buffered failed too
                raise
    sensor.run(1)


def configure(view):
    """The pixel format this view's model takes (the frame size and buffers stay as they are)."""
    sensor.set_pixformat(sensor.GRAYSCALE if view.gray else sensor.RGB565)


def kpu_image(view, img):
    """The image to hand to the KPU for the frame img: img itself when the model takes the whole frame, else the
    region cut, resized and given its AI buffer. The heap is collected first, so these three blocks are placed in
    the same free space every frame and never strand each other (MemoryError on a fragmented heap)."""
    if view.whole:
        return img
    gc.collect()
    x, y, cw, ch = view.box
    part = img.cut(x, y, cw, ch)
    if (cw, ch) != (view.w, view.h):
        part = part.resize(view.w, view.h)
    part.pix_to_ai()  # cut() and resize() give no AI buffer
    return part
