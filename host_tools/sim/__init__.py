"""The virtual Maix Bit: simulated MaixPy firmware running unmodified device code in CPython.

    from host_tools.sim import Board, Session, run_app
    board = Board(flash_root="out/flash")          # /flash as a host folder, 16 MiB flash image, clock, camera...
    s = Session(board); s.boot()                   # _boot.py, boot.py, main.py like the firmware

See docs/ARCHITECTURE.md; firmware facts in ../shared/docs/maixpy-firmware-facts.md.
"""
from host_tools.sim.board import Board
from host_tools.sim.session import BootResult, Session

__all__ = ["Board", "Session", "BootResult", "run_app"]


def __getattr__(name):
    if name == "run_app":   # the runner pulls in PIL GIF writing and the provisioning helpers
        from host_tools.sim.runner import run_app
        return run_app
    raise AttributeError(name)
