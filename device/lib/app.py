# The app: camera -> model on the KPU -> LCD, the BOOT key toggling classifier <-> detector. Nothing here may
# stop the loop except Ctrl-C: every error is shown on the LCD and the other mode keeps running.
import sensor
import lcd
import time
import registry
import camera
import screen
import infer
from manager import Manager, error_text
from bootkey import BootKey

NOTICE_MS = 4000  # how long an error stays on the screen
CAMERA_RETRY_MS = 500  # pause between attempts to bring a missing camera up
TAG = {"classifier": "CLS", "detector": "DET"}


class Slot:
    """One mode: the model it runs, or why it cannot run."""

    def __init__(self, kind, entry, problem):
        self.kind = kind
        self.entry = entry
        self.problem = problem
        self.failed = False  # its model failed on a frame: no automatic fall back to it until the next press


def make_slots(entries, problems):
    slots = []
    for kind in registry.KINDS:
        entry = None
        for e in entries:
            if e["kind"] == kind:
                entry = e
                break
        problem = None
        if entry is None:
            for k, msg in problems:
                if k == kind or k is None:
                    problem = msg
                    break
            if problem is None:
                problem = "models.json has no %s" % kind
        slots.append(Slot(kind, entry, problem))
    return slots


class App:
    def __init__(self, manifest="models.json", key=None):
        entries, problems = registry.read(manifest)
        self.slots = make_slots(entries, problems)
        self.manager = Manager()
        self.key = key if key is not None else BootKey()
        self.mode = 0          # index into slots of the mode shown
        self.view = None       # camera.View of the model held
        self.notice = None     # (text, until_ms)
        self.frames = 0
        self.fps = 0.0
        self._last_ms = None
        self.result = None     # the last frame's: (label, score), or [(label, score, x, y, w, h)] for a detector
        for _, msg in problems:
            self.tell(msg)

    def tell(self, text, again=True):
        """Show text over the frames for NOTICE_MS (below a notice still showing, once) and print it; again=False
        prints it only when it is not showing already (an error that repeats every frame)."""
        now = time.ticks_ms()
        showing = self.notice is not None and time.ticks_diff(self.notice[1], now) > 0
        lines = self.notice[0].split("\n") if showing else []
        if again or text not in lines:
            print(text)
        if text not in lines:
            lines.append(text)
        self.notice = ("\n".join(lines), time.ticks_add(now, NOTICE_MS))

    def _follow(self, want):
        """After a load: the mode is the held model's slot (or want when nothing is held); camera to match."""
        held = self.manager.entry
        if held is None:
            self.mode = want
            self.view = camera.View(camera.FRAME_W, camera.FRAME_H, 3)  # the plain camera
        else:
            for i in range(len(self.slots)):
                if self.slots[i].entry is held:
                    self.mode = i
            self.view = camera.View(held["w"], held["h"], held["c"], held["framing"])
        try:
            camera.configure(self.view)
        except Exception as err:  # no camera: the frames will say so too; the model stays loaded
            self.tell("camera: %s" % error_text(err), False)

    def enter(self, i):
        """Switch to mode i; on any failure the model that ran keeps running and the error is shown."""
        slot = self.slots[i]
        if slot.entry is None:
            self.tell(slot.problem)
            return False
        screen.message("loading %s ..." % slot.entry["name"], 200)
        err = self.manager.switch(slot.entry)
        if err and camera.dual and "error:2006," in err:
            err = self.make_room(slot.entry)
        if err:
            self.tell(err)
        self._follow(i)
        return err is None

    def make_room(self, entry):
        """The model did not fit beside a double-buffered camera: give the second frame buffer set back to the
        system heap and load it again (the camera stays double-buffered when even that does not fit). Returns the
        load's error text or None."""
        try:
            camera.start(False)
            err = self.manager.switch(entry)
            if err:
                camera.start(True)
            else:
                self.tell("camera: single-buffered to make room for %s" % entry["name"])
            return err
        except Exception as err:
            return "camera: %s" % error_text(err)

    def start(self):
        """Load the first mode that has a model (problems were told already); else run the camera alone."""
        for i in range(len(self.slots)):
            if self.slots[i].entry is not None and self.enter(i):
                return
        self._follow(0)

    def drop(self, err):
        """The held model failed on a frame: free it and fall back to the other mode (tried again on a press)."""
        failed = self.mode
        self.slots[failed].failed = True
        self.tell("%s: %s" % (self.manager.entry["name"], error_text(err)))
        self.manager.free()
        other = self.slots[1 - failed]
        if other.entry is None or other.failed or not self.enter(1 - failed):
            self._follow(failed)  # the camera alone, until a press tries a model again

    def frame(self):
        self._tick()
        presses = self.key.take()
        if presses % 2:  # an even count of presses leaves the mode as it is
            self.slots[1 - self.mode].failed = False  # the user asks for it: try it again
            self.enter(1 - self.mode)
        try:
            img = sensor.snapshot()
        except Exception as err:
            self.no_frame("camera: %s" % error_text(err))
            return
        held = self.manager.entry
        result = None
        if held is not None:
            try:
                kimg = camera.kpu_image(self.view, img)
                if held["kind"] == "classifier":
                    result = infer.classify(self.manager.task, held, kimg)
                else:
                    result = infer.detect(self.manager.task, held, kimg)
                kimg = None
                self.result = result
            except Exception as err:
                self.drop(err)
                result = None
        try:
            self.show(img, result)
        except Exception as err:  # a drawing problem must not stop the app: show the bare frame, try again next
            self.tell("display: %s" % error_text(err), False)
            try:
                lcd.display(img)
            except Exception:
                pass
        self.frames += 1

    def _tick(self):
        """Frames per second of the whole loop (camera, KPU, drawing, LCD), smoothed over about ten frames."""
        now = time.ticks_ms()
        if self._last_ms is not None:
            dt = time.ticks_diff(now, self._last_ms)
            if dt > 0:
                self.fps = 1000 / dt if self.fps == 0 else self.fps * 0.9 + 100 / dt
        self._last_ms = now

    def no_frame(self, text):
        """The camera gave no frame: say so on the bare LCD (once per notice), then try to bring it up again."""
        self.tell(text, False)
        screen.message(self.notice[0], 0, False)
        time.sleep_ms(CAMERA_RETRY_MS)
        try:
            camera.start(camera.dual)
            camera.configure(self.view)
        except Exception:
            pass  # still no camera: the next frame says so again

    def show(self, img, result):
        """Draw on the frame itself (no copy: nothing new on the heap) and send it to the LCD."""
        view = self.view
        held = self.manager.entry
        width, height = camera.FRAME_W, camera.FRAME_H
        if held is not None and not view.whole:
            x, y, w, h = view.box
            img.draw_rectangle(x, y, w, h, screen.WHITE, 1)  # the part of the frame the model sees
        if result is not None:
            if held["kind"] == "classifier":
                infer.draw_class(img, result, width)
            else:
                infer.draw_boxes(img, result, view)
        title = TAG[self.slots[self.mode].kind] + " " + (held["name"] if held is not None else "(no model)")
        screen.overlay(img, title, screen.YELLOW, 2, width)
        if self.notice is not None:
            if time.ticks_diff(self.notice[1], time.ticks_ms()) > 0:
                screen.overlay(img, self.notice[0], screen.RED, 60, width)
            else:
                self.notice = None
        screen.overlay(img, "%.1f fps" % self.fps, screen.WHITE, height - screen.LINE_H, width)
        lcd.display(img)

    def run(self, frames=0):
        """Run frames frames (0: until Ctrl-C); the model is freed however the loop ends."""
        try:
            self.start()
            while frames <= 0 or self.frames < frames:
                self.frame()
        finally:
            self.manager.free()


current = None  # the running App, for a look from the REPL


def run(frames=0, manifest="models.json"):
    global current
    current = App(manifest)
    current.run(frames)
    return current
