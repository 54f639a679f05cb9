# Text on the LCD: wrapped messages straight to the panel (when there is no frame) or onto a frame.
# lcd.draw_string loses about 7.7 KB of system heap on every call with an empty string or y > 304 (py_lcd.c
# returns before freeing its buffers), so empty lines and lines below the panel are never drawn.
import lcd

COLS = 38        # characters per line: the firmware font is 8 pixels wide (monospaced), 320-pixel LCD less a margin
LINE_H = 14      # 12-pixel font and 2 pixels between lines
PANEL_H = 240
BLACK = (0, 0, 0)
WHITE = (255, 255, 255)
RED = (255, 64, 64)
GREEN = (64, 255, 64)
YELLOW = (255, 255, 0)


def wrap(text, cols=COLS):
    """The non-empty lines of text, each at most cols characters (breaking at spaces when it can). "\\r\\n" ends a
    line like "\\n" (the KPU's error texts end with it)."""
    out = []
    for para in str(text).replace("\r", "\n").split("\n"):
        para = para.strip()
        while len(para) > cols:
            cut = para.rfind(" ", 0, cols + 1)
            if cut <= 0:
                cut = cols
            out.append(para[:cut])
            para = para[cut:].lstrip()
        if para:
            out.append(para)
    return out


def message(text, y=0, echo=True):
    """Write text straight to the LCD (used when no camera frame can carry it), and to the REPL when echo.
    Never raises: the caller is already reporting a problem and the REPL must stay usable."""
    try:
        lines = wrap(text)
        for i in range(len(lines)):
            top = y + 4 + i * LINE_H
            if top + 12 > PANEL_H:
                break
            lcd.draw_string(4, top, lines[i], lcd.WHITE, lcd.BLACK)
    except Exception as e:
        print("screen:", e)
    if echo:
        print(text)


def overlay(img, text, color, y=0, width=320, scale=1):
    """Draw text wrapped to a frame width pixels wide, each line on a black strip so it reads on any scene;
    returns the y below it. Monospaced, so a line is 8 * scale pixels per character like its strip."""
    lines = wrap(text, max(4, (width - 8) // (8 * scale)))
    step = LINE_H * scale
    for i in range(len(lines)):
        img.draw_rectangle(2, y + i * step, len(lines[i]) * 8 * scale + 4, 12 * scale, BLACK, 1, True)
        img.draw_string(4, y + i * step, lines[i], color=color, scale=scale, mono_space=True)
    return y + len(lines) * step
