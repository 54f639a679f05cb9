"""MaixPy's YOLOv2 demo loop (snapshot, run_yolo2, draw the boxes, lcd.display, print the fps) on the virtual
Maix Bit: frames per second of board time, to hold the simulator's whole-loop clock to published demo figures
(host_tools.k210.cost.PUBLISHED, bench/board_time.py, tests/test_board_time.py)."""
import shutil
import tempfile
from pathlib import Path

from host_tools.sim.board import Board
from host_tools.sim.session import Session

DEMO = """
import sensor, lcd, time
import KPU as kpu
lcd.init()
sensor.reset()
sensor.set_pixformat(sensor.RGB565)
sensor.set_framesize(sensor.QVGA)
sensor.run(1)
clock = time.clock()
task = kpu.load("/sd/model.kmodel")
kpu.init_yolo2(task, 0.5, 0.3, %d, %r)
def frame():
    clock.tick()
    img = sensor.snapshot()
    code = kpu.run_yolo2(task, img)
    if code:
        for i in code:
            img.draw_rectangle(i.rect())
    lcd.display(img)
    print(clock.fps())
"""


def yolo_loop_fps(kmodel_path, anchors, seconds: float = 3.0) -> float:
    """Frames per board second of the demo loop with this kmodel, after one board second of warm-up."""
    with tempfile.TemporaryDirectory(prefix="demo-loop-") as tmp:
        sd = Path(tmp) / "sd"
        sd.mkdir()
        shutil.copyfile(kmodel_path, sd / "model.kmodel")
        board = Board(flash_root=Path(tmp) / "flash", sd_root=sd)
        s = Session(board)
        s.exec(DEMO % (len(anchors) // 2, tuple(anchors)))
        t0 = board.clock.ms + 1000
        while board.clock.ms < t0:
            s.exec("frame()")
        n = 0
        while board.clock.ms < t0 + seconds * 1000:
            s.exec("frame()")
            n += 1
        return n / ((board.clock.ms - t0) / 1000.0)
