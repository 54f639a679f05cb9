# The model manager: at most one model on the KPU. The old one is always deinit'ed and the heap collected before
# the next loads; a load that fails brings back the model that worked, and the caller shows the error text.
import gc
import KPU as kpu

# kpu.load_flash arguments: dual buffer (faster), batch size in the 0x4000-0x10000 range dual buffering asks
# for, and the top SPI speed the firmware allows.
FLASH_DUAL_BUF = 1
FLASH_BATCH = 0x4000
FLASH_SPI_HZ = 80000000


def open_model(e):
    """Load one registry entry onto the KPU (and set up the region layer for a detector); returns the task."""
    src = e["source"]
    if "flash" in src:
        if e["load"] == "flash":
            task = kpu.load_flash(src["flash"], FLASH_DUAL_BUF, FLASH_BATCH, FLASH_SPI_HZ)
        else:
            task = kpu.load(src["flash"])
    else:
        task = kpu.load(src["path"])
    try:
        if e["kmodel_version"] == 4:
            set_v4_outputs(task, e["out_shapes"])
        if e["kind"] == "detector":
            kpu.init_yolo2(task, e["threshold"], e["nms"], len(e["anchors"]) // 2, e["anchors"])
    except Exception:
        kpu.deinit(task)
        raise
    return task


def set_v4_outputs(task, shapes):
    """A kmodel V4 carries no output shapes: the firmware needs each one (w, h, ch) before forward/run_yolo2."""
    for i in range(len(shapes)):
        c, h, w = shapes[i]
        if not kpu.set_outputs(task, i, w, h, c):
            raise ValueError("kpu.set_outputs refused output %d shape %dx%dx%d" % (i, c, h, w))


def error_text(err):
    """The firmware's own words for an error (its ValueError texts already carry the code; some end in "\r\n")."""
    text = str(err).strip()
    if not text:
        text = err.__class__.__name__
    return text


class Manager:
    def __init__(self):
        self.task = None
        self.entry = None  # the registry entry of the model held now, None when none

    def free(self):
        if self.task is not None:
            kpu.deinit(self.task)  # first: if it is interrupted, the model is still ours to free
        self.task = None
        self.entry = None
        gc.collect()

    def switch(self, e):
        """Hold model e instead of the one held now. Returns None, or the error text when e failed to load (the
        model held before is then loaded again; if that fails too, nothing is held and both errors are told)."""
        prev = self.entry
        self.free()
        try:
            self.task = open_model(e)
            self.entry = e
            return None
        except Exception as err:
            msg = "%s: %s" % (e["name"], error_text(err))
        gc.collect()  # what the failed load took, before the old model needs it
        if prev is not None:
            try:
                self.task = open_model(prev)
                self.entry = prev
            except Exception as err:
                msg = "%s\n%s: %s" % (msg, prev["name"], error_text(err))
                gc.collect()
        return msg
