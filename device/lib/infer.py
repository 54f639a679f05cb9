# One frame of each mode: run the model held by the manager on a camera frame and draw the result onto it.
import KPU as kpu
import screen

BOX = (0, 255, 0)


def top1(values, out_type):
    """(index, score) of the best class; uint8 ('B') outputs are scaled to [0, 1]."""
    best = 0
    bv = values[0]
    for i in range(1, len(values)):
        if values[i] > bv:
            bv = values[i]
            best = i
    if out_type == "B":
        bv = bv / 255
    return best, bv


def label(entry, i):
    labels = entry["labels"]
    return labels[i] if i < len(labels) else str(i)


def classify(task, entry, kimg, img, width):
    """Top-1 label and score drawn on img; returns (label, score)."""
    fmap = kpu.forward(task, kimg)
    best, score = top1(fmap[:], entry["out_type"])
    name = label(entry, best)
    screen.overlay(img, "%s %.2f" % (name, score), screen.GREEN, 20, width, 2)
    return name, score


def detect(task, entry, kimg, img, view):
    """Boxes with labels drawn on img (scaled back from the model's input to the frame); returns the labels."""
    objs = kpu.run_yolo2(task, kimg)
    if objs is None:  # the firmware's "nothing found"
        return []
    found = []
    for o in objs:
        x = int(o.x() * view.sx)
        y = int(o.y() * view.sy)
        img.draw_rectangle(x, y, int(o.w() * view.sx), int(o.h() * view.sy), BOX, 2)
        name = label(entry, o.classid())
        img.draw_string(x + 2, y + 2, "%s %.2f" % (name, o.value()), BOX, 1)
        found.append(name)
    return found
