# One frame of each mode: run the held model on the KPU (errors here are the model's), then draw its result
# (errors there are the display's), kept apart so the app can tell which one failed.
import KPU as kpu
import screen

BOX = (0, 255, 0)


def top1(values, typecode):
    """(index, score) of the best class; uint8 outputs (typecode 'B': the model ends with a KPU conv) are scaled to
    [0, 1]."""
    best = 0
    bv = values[0]
    for i in range(1, len(values)):
        if values[i] > bv:
            bv = values[i]
            best = i
    if typecode == "B":
        bv = bv / 255
    return best, bv


def label(entry, i):
    labels = entry["labels"]
    return labels[i] if i < len(labels) else str(i)


def classify(task, entry, kimg):
    """(label, score) of the top class."""
    fmap = kpu.forward(task, kimg)
    best, score = top1(fmap[:], fmap.typecode())
    return label(entry, best), score


def detect(task, entry, kimg):
    """[(label, score, x, y, w, h)] in model input pixels; [] when the firmware finds nothing (None)."""
    objs = kpu.run_yolo2(task, kimg)
    if objs is None:
        return []
    return [(label(entry, o.classid()), o.value(), o.x(), o.y(), o.w(), o.h()) for o in objs]


def draw_class(img, result, width):
    screen.overlay(img, "%s %.2f" % result, screen.GREEN, 20, width, 2)


def draw_boxes(img, boxes, view):
    """Boxes mapped from the model's input back through its crop onto the frame, each with its label."""
    for name, score, x, y, w, h in boxes:
        x, y, w, h = view.to_frame(x, y, w, h)
        img.draw_rectangle(x, y, w, h, BOX, 2)
        text = "%s %.2f" % (name, score)
        img.draw_rectangle(x, y, len(text) * 8 + 4, 12, BOX, 1, True)  # label tab: readable on any scene
        img.draw_string(x + 2, y, text, color=screen.BLACK, mono_space=True)
