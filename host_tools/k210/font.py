"""MaixPy's built-in font and where its text goes (omv/img/font.c imlib_draw_ascii_string, imlib_draw_font).

The font is 8 x 12 pixels per character cell, characters ' '..'~'. img.draw_string draws it proportional by default
(mono_space=False: each character is moved left by its first inked column and advanced by its last inked column
+ 2, a space by 3); lcd.draw_string draws it monospaced (8 pixels per character). '\\n' and '\\r' (a "\\r\\n"
counts once) start a new line 12 * scale + y_spacing lower; any other character outside ' '..'~' draws a small
rectangle and does not advance. fast_roundf truncates (fmath.h).

INK holds, for each character from ' ' to '~', its first and last inked column in the cell (two digits; '--' for
the space, which has none): the metrics the layout needs, read from the firmware's glyph table.
"""
CELL_W, CELL_H = 8, 12
FIRST, LAST = 0x20, 0x7E
SPACE_ADVANCE = 3
INK = ("--33141515170633242415152415231515241515151515151515231314051415061515151515151515151515151515151515"
       "151515151515151515241524151624151515151515151523241523151515151515151515151515151516331615")


def ink(ch: str):
    """(first, last) inked column of a printable character, or None for the space."""
    i = (ord(ch) - FIRST) * 2
    pair = INK[i:i + 2]
    return None if pair == "--" else (int(pair[0]), int(pair[1]))


def _steps(ch: str, scale: float, x_spacing: int, mono_space: bool):
    """(move left before drawing, move right after) for a printable character."""
    extent = ink(ch)
    if mono_space:
        return 0, int(CELL_W * scale) + x_spacing
    if extent is None:
        return 0, int(scale * SPACE_ADVANCE)
    return int(extent[0] * scale), int((extent[1] + 2) * scale) + x_spacing


def layout(text: str, x: int, y: int, scale: float = 1.0, x_spacing: int = 0, y_spacing: int = 2,
           mono_space: bool = False):
    """Where imlib_draw_ascii_string puts each character: ([('glyph', ch, cell_x, y) | ('box', x, y, w, h)], the x
    where the next character would go), cell_x being the left edge of the 8-pixel cell the glyph is drawn in."""
    out = []
    anchor = x
    last = ""
    for ch in text:
        prev, last = last, ch
        if prev == "\r" and ch == "\n":
            continue
        if ch in "\r\n":
            x = anchor
            y += int(CELL_H * scale) + y_spacing
            continue
        if not FIRST <= ord(ch) <= LAST:
            # the rectangle's width and height are swapped in the C: font height wide, font width high
            m = int(scale * 3) // 2
            out.append(("box", x + m, y + m, int(CELL_H * scale) - 2 * m, int(CELL_W * scale) - 2 * m))
            continue
        back, forward = _steps(ch, scale, x_spacing, mono_space)
        x -= back
        out.append(("glyph", ch, x, y))
        x += forward
    return out, x


def width(text: str, scale: float = 1.0, x_spacing: int = 0, mono_space: bool = False) -> int:
    """Pixels from the start of a one-line text to where the next character would go."""
    return layout(text, 0, 0, scale, x_spacing, 0, mono_space)[1]
