# Camera set-up per model: the KPU needs an image of exactly the model's input size with its AI buffer.
# Classifier: a centred sensor window of the model's size (the MaixPy demos' way; rounded up to the multiple of 8
# the window takes, then resized). Detector: the whole QVGA frame (resized when the model is smaller).
import sensor

FRAME_W = 320
FRAME_H = 240


def up8(n):
    return (n + 7) // 8 * 8


class View:
    """How frames are taken and shown for one model."""

    def __init__(self, kind, w, h, c):
        self.w = w
        self.h = h
        self.gray = c == 1
        if kind == "classifier" and (w, h) != (FRAME_W, FRAME_H):
            self.win = (min(up8(w), FRAME_W), min(up8(h), FRAME_H))
        else:
            self.win = None
        fw, fh = self.win if self.win is not None else (FRAME_W, FRAME_H)
        self.resize = (fw, fh) != (w, h)
        self.sx = fw / w  # model pixels -> frame pixels, for boxes
        self.sy = fh / h
        # a small window is shown enlarged, so the LCD (and its text) is readable
        self.zoom = max(1, min(FRAME_W // fw, FRAME_H // fh))
        self.show_w = fw * self.zoom
        self.show_h = fh * self.zoom


def configure(view):
    """Set the sensor for this view (the frame size also resets any earlier window)."""
    sensor.set_pixformat(sensor.GRAYSCALE if view.gray else sensor.RGB565)
    sensor.set_framesize(sensor.QVGA)
    sensor.set_windowing(view.win if view.win is not None else (FRAME_W, FRAME_H))


def kpu_image(view, img):
    """The image to hand to the KPU for a snapshot img (img itself unless it must be resized)."""
    if not view.resize:
        return img
    small = img.resize(view.w, view.h)
    small.pix_to_ai()  # resize() drops the AI buffer the KPU reads
    return small


def shown_image(view, img):
    """The image to draw on and send to the LCD."""
    if view.zoom == 1:
        return img
    return img.resize(view.show_w, view.show_h)
