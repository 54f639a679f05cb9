# Camera set-up per model: the KPU needs an image of exactly the model's input size with its AI buffer.
# Big inputs come straight from a centred sensor window (as the MaixPy MobileNet demos do); small ones, or sizes
# the window cannot take (not multiples of 8), from the full QVGA frame resized, so the LCD still shows the scene.
import sensor

FRAME_W = 320
FRAME_H = 240
MIN_WINDOW = 96  # below this a window is a tiny crop of the scene: resize the frame instead


class View:
    """How frames are taken for one model: kpu_image(img) gives the model's input, scale maps boxes back."""

    def __init__(self, w, h, c):
        self.w = w
        self.h = h
        self.gray = c == 1
        full = w == FRAME_W and h == FRAME_H
        self.window = (not full and w % 8 == 0 and h % 8 == 0 and w >= MIN_WINDOW and h >= MIN_WINDOW)
        self.resize = not full and not self.window
        self.sx = FRAME_W / w if self.resize else 1.0
        self.sy = FRAME_H / h if self.resize else 1.0


def configure(view):
    """Set the sensor for this view (the frame size also resets any earlier window)."""
    sensor.set_pixformat(sensor.GRAYSCALE if view.gray else sensor.RGB565)
    sensor.set_framesize(sensor.QVGA)
    if view.window:
        sensor.set_windowing((view.w, view.h))
    else:
        sensor.set_windowing((FRAME_W, FRAME_H))


def kpu_image(view, img):
    """The image to hand to the KPU for a snapshot img (img itself unless it must be resized)."""
    if not view.resize:
        return img
    small = img.resize(view.w, view.h)
    small.pix_to_ai()  # resize() drops the AI buffer the KPU reads
    return small
