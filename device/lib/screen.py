# Text on the LCD: wrapped messages straight to the panel (when there is no frame) or onto a frame.
import lcd

COLS = 38        # 8-pixel font on a 320-pixel LCD, less a margin
LINE_H = 14
BLACK = (0, 0, 0)
WHITE = (255, 255, 255)
RED = (255, 64, 64)
GREEN = (64, 255, 64)
YELLOW = (255, 255, 0)


def wrap(text, cols=COLS):
    """Split text into lines of at most cols characters (breaking at spaces when it can)."""
    out = []
    for para in str(text).split("\n"):
        while len(para) > cols:
            cut = para.rfind(" ", 0, cols + 1)
            if cut <= 0:
                cut = cols
            out.append(para[:cut])
            para = para[cut:].lstrip()
        out.append(para)
    return out


def message(text, y=0, echo=True):
    """Write text straight to the LCD (used when no camera frame can carry it), and to the REPL when echo.
    Never raises: the caller is already reporting a problem and the REPL must stay usable."""
    try:
        lines = wrap(text)
        for i in range(len(lines)):
            lcd.draw_string(4, y + 4 + i * LINE_H, lines[i], lcd.WHITE, lcd.BLACK)
    except Exception as e:
        print("screen:", e)
    if echo:
        print(text)


def overlay(img, text, color, y=0, width=320, scale=1):
    """Draw text wrapped to a frame width pixels wide, each line on a black strip so it reads on any scene;
    returns the y below it. The firmware font is 8x10 pixels per character at scale 1."""
    lines = wrap(text, max(4, (width - 8) // (8 * scale)))
    step = LINE_H * scale
    for i in range(len(lines)):
        if lines[i]:
            img.draw_rectangle(2, y + i * step, len(lines[i]) * 8 * scale + 4, 12 * scale, BLACK, 1, True)
            img.draw_string(4, y + i * step + scale, lines[i], color, scale)
    return y + len(lines) * step
