"""Reading the virtual LCD in tests: is this text drawn at (x, y) in this colour, as the firmware's font draws it?"""
import numpy as np

from host_tools.sim.firmware.image import text_mask


def says(rgb: np.ndarray, text: str, x: int, y: int, color, tol: int = 40) -> bool:
    """True when every pixel the 8x12 mono font sets for text at (x, y) has color (screen.overlay's strips)."""
    mask, mx, my = text_mask(text, 1.0, 0, 2, True)
    x, y = x + mx, y + my
    region = rgb[y:y + mask.shape[0], x:x + mask.shape[1]].astype(int)
    if region.shape[:2] != mask.shape:
        return False
    ink = region[mask]
    return bool(np.all(np.abs(ink - np.array(color)) <= tol))


def says_anywhere_on_row(rgb, text, y, color, x0=4, cols=38) -> bool:
    """Mono-spaced text starting at any character cell of a line."""
    return any(says(rgb, text, x0 + 8 * k, y, color) for k in range(cols - len(text) + 1))
