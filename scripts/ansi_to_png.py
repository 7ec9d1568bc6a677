#!/usr/bin/env python3
"""Render a terminal capture with ANSI colour escapes (e.g. `tmux capture-pane -e -p`) to a PNG.

Usage:
    scripts/ansi_to_png.py CAPTURE.ansi OUT.png [--cols 110] [--rows 24] [--font-size 16] [--title keydeck]

CAPTURE may be "-" for stdin. Needs Pillow (`pip install pillow`) and DejaVu Sans Mono
(Debian/Ubuntu: `apt-get install fonts-dejavu-core`).

What it understands: SGR sequences (ESC [ ... m) with reset, bold, dim, italic,
underline, reverse, strikethrough, the 16 colours (30-37, 90-97, 40-47, 100-107),
256 colours (38;5;n / 48;5;n) and truecolour (38;2;r;g;b / 48;2;r;g;b). Any other
escape sequence is skipped. Attributes carry over from one line to the next, as
they do in tmux's output. Wide (East Asian) characters take two cells; light
box-drawing lines are drawn as lines so borders join up seamlessly.
"""

import argparse
import os
import re
import sys
import unicodedata
from dataclasses import dataclass, replace

from PIL import Image, ImageDraw, ImageFont

FONT_DIR = "/usr/share/fonts/truetype/dejavu"

# A dark theme (Catppuccin Mocha) for the default colours and the 16 ANSI ones.
BACKGROUND = (0x1E, 0x1E, 0x2E)
FOREGROUND = (0xCD, 0xD6, 0xF4)
TITLE_BAR = (0x18, 0x18, 0x25)
PALETTE_16 = [
    (0x45, 0x47, 0x5A), (0xF3, 0x8B, 0xA8), (0xA6, 0xE3, 0xA1), (0xF9, 0xE2, 0xAF),  # black red green yellow
    (0x89, 0xB4, 0xFA), (0xF5, 0xC2, 0xE7), (0x94, 0xE2, 0xD5), (0xBA, 0xC2, 0xDE),  # blue magenta cyan white
    (0x58, 0x5B, 0x70), (0xF7, 0xA6, 0xBC), (0xBD, 0xF0, 0xB8), (0xFB, 0xEB, 0xC4),  # bright variants
    (0xA6, 0xC8, 0xFB), (0xF8, 0xD3, 0xEE), (0xB0, 0xEC, 0xE2), (0xDE, 0xE3, 0xF5),
]


def palette_256(n):
    """The xterm 256-colour palette: 16 theme colours, a 6x6x6 cube, then 24 greys."""
    if n < 16:
        return PALETTE_16[n]
    if n < 232:
        n -= 16
        steps = [0, 95, 135, 175, 215, 255]
        return (steps[n // 36], steps[(n // 6) % 6], steps[n % 6])
    grey = 8 + 10 * (n - 232)
    return (grey, grey, grey)


@dataclass(frozen=True)
class Style:
    fg: tuple = None  # None = the terminal's default colour
    bg: tuple = None
    bold: bool = False
    dim: bool = False
    italic: bool = False
    underline: bool = False
    reverse: bool = False
    strike: bool = False
    hidden: bool = False


def extended_colour(params, i):
    """Reads `5;n` or `2;r;g;b` after a 38/48 at params[i]; returns (colour, next index)."""
    if i + 1 < len(params) and params[i + 1] == 5 and i + 2 < len(params):
        return palette_256(params[i + 2] % 256), i + 3
    if i + 1 < len(params) and params[i + 1] == 2 and i + 4 < len(params):
        return tuple(v % 256 for v in params[i + 2:i + 5]), i + 5
    return None, len(params)  # malformed: ignore the rest


def apply_sgr(style, params):
    """Returns `style` updated by one SGR sequence's parameters."""
    params = params or [0]
    i = 0
    while i < len(params):
        p = params[i]
        i += 1
        if p == 0:
            style = Style()
        elif p == 1:
            style = replace(style, bold=True)
        elif p == 2:
            style = replace(style, dim=True)
        elif p == 3:
            style = replace(style, italic=True)
        elif p == 4:
            style = replace(style, underline=True)
        elif p == 7:
            style = replace(style, reverse=True)
        elif p == 8:
            style = replace(style, hidden=True)
        elif p == 9:
            style = replace(style, strike=True)
        elif p == 21 or p == 24:
            style = replace(style, underline=False)
        elif p == 22:
            style = replace(style, bold=False, dim=False)
        elif p == 23:
            style = replace(style, italic=False)
        elif p == 27:
            style = replace(style, reverse=False)
        elif p == 28:
            style = replace(style, hidden=False)
        elif p == 29:
            style = replace(style, strike=False)
        elif 30 <= p <= 37:
            style = replace(style, fg=PALETTE_16[p - 30])
        elif 90 <= p <= 97:
            style = replace(style, fg=PALETTE_16[p - 90 + 8])
        elif 40 <= p <= 47:
            style = replace(style, bg=PALETTE_16[p - 40])
        elif 100 <= p <= 107:
            style = replace(style, bg=PALETTE_16[p - 100 + 8])
        elif p == 39:
            style = replace(style, fg=None)
        elif p == 49:
            style = replace(style, bg=None)
        elif p in (38, 48):
            colour, i = extended_colour(params, i - 1)
            if colour is not None:
                style = replace(style, **{"fg" if p == 38 else "bg": colour})
        # anything else (blink, fonts, ...) is ignored
    return style


# CSI sequences (ESC [ ... final byte), OSC sequences (ESC ] ... BEL or ESC \), other two-byte escapes.
ESCAPE = re.compile(r"\x1b\[([0-9;:?<=>]*)([ -/]*[@-~])|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[@-_]")


def char_width(ch):
    if unicodedata.combining(ch) or ch in "\u200b\u200d\ufe0f":
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def parse(text):
    """Turns the capture into rows of cells; each cell is [text, style, width] (width 0 = covered by a wide char)."""
    rows = []
    style = Style()
    for line in text.split("\n"):
        row = []
        pos = 0
        for m in ESCAPE.finditer(line):
            add_cells(row, line[pos:m.start()], style)
            pos = m.end()
            if m.group(2) == "m" and not re.search("[?<=>]", m.group(1)):
                params = [int(p) if p else 0 for p in re.split("[;:]", m.group(1))] if m.group(1) else []
                style = apply_sgr(style, params)
        add_cells(row, line[pos:], style)
        rows.append(row)
    if rows and not rows[-1]:
        rows.pop()  # the capture's final newline
    return rows


def add_cells(row, text, style):
    """Appends the characters of `text`, all in `style`, to `row` as cells."""
    for ch in text:
        if ch == "\r":
            continue
        if ch == "\t":
            row.extend([" ", style, 1] for _ in range(8 - len(row) % 8))
            continue
        w = char_width(ch)
        if w == 0 and row:
            row[-1][0] += ch  # combining mark: joins the previous character
        elif w > 0:
            row.append([ch, style, w])
            if w == 2:
                row.append(["", style, 0])


# Light box-drawing characters as arms from the cell's centre: (left, right, up, down).
BOX_ARMS = {
    "─": "lr", "│": "ud", "┌": "rd", "┐": "ld", "└": "ru", "┘": "lu",
    "╭": "rd", "╮": "ld", "╰": "ru", "╯": "lu", "├": "rud", "┤": "lud",
    "┬": "lrd", "┴": "lru", "┼": "lrud", "╴": "l", "╶": "r", "╵": "u", "╷": "d",
}


def draw_box(draw, ch, x, y, w, h, colour, thickness):
    cx, cy = x + w // 2, y + h // 2
    half = thickness // 2
    arms = BOX_ARMS[ch]
    if "l" in arms:
        draw.rectangle([x, cy - half, cx + half, cy - half + thickness - 1], fill=colour)
    if "r" in arms:
        draw.rectangle([cx - half, cy - half, x + w - 1, cy - half + thickness - 1], fill=colour)
    if "u" in arms:
        draw.rectangle([cx - half, y, cx - half + thickness - 1, cy + half], fill=colour)
    if "d" in arms:
        draw.rectangle([cx - half, cy - half, cx - half + thickness - 1, y + h - 1], fill=colour)


def mix(a, b, t):
    """`a` moved a fraction `t` of the way towards `b`."""
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b))


def resolve_colours(style):
    fg = style.fg or FOREGROUND
    bg = style.bg or BACKGROUND
    if style.dim:
        fg = mix(fg, bg, 0.45)
    if style.reverse:
        fg, bg = bg, fg
    return fg, bg


def load_fonts(font_dir, size):
    def font(name, fallback=None):
        path = os.path.join(font_dir, name)
        if not os.path.exists(path) and fallback:
            return fallback
        return ImageFont.truetype(path, size)

    regular = font("DejaVuSansMono.ttf")
    bold = font("DejaVuSansMono-Bold.ttf", regular)
    return {
        (False, False): regular,
        (True, False): bold,
        (False, True): font("DejaVuSansMono-Oblique.ttf", regular),
        (True, True): font("DejaVuSansMono-BoldOblique.ttf", bold),
    }


def render(rows, cols, nrows, font_size, font_dir, title, padding):
    fonts = load_fonts(font_dir, font_size)
    regular = fonts[(False, False)]
    ascent, descent = regular.getmetrics()
    cell_w = round(regular.getlength("M"))
    cell_h = round((ascent + descent) * 1.1)
    baseline = (cell_h - ascent - descent) // 2 + ascent
    line = max(1, font_size // 14)  # underline / box-line thickness

    bar_h = round(font_size * 2) if title is not None else 0
    width = cols * cell_w + 2 * padding
    height = bar_h + nrows * cell_h + 2 * padding
    radius = round(font_size * 0.6)

    # A rounded window on a transparent canvas, with a thin title bar.
    img = Image.new("RGBA", (width, height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(img)
    draw.rounded_rectangle([0, 0, width - 1, height - 1], radius=radius, fill=BACKGROUND)
    if title is not None:
        draw.rounded_rectangle([0, 0, width - 1, bar_h + radius], radius=radius, fill=TITLE_BAR)
        draw.rectangle([0, bar_h, width - 1, bar_h + radius], fill=BACKGROUND)
        dot_r = round(font_size * 0.32)
        for i, colour in enumerate([(0xF3, 0x8B, 0xA8), (0xF9, 0xE2, 0xAF), (0xA6, 0xE3, 0xA1)]):
            cx = padding + dot_r + i * dot_r * 3.2
            draw.ellipse([cx - dot_r, bar_h / 2 - dot_r, cx + dot_r, bar_h / 2 + dot_r], fill=colour)
        draw.text((width / 2, bar_h / 2), title, font=regular, fill=mix(FOREGROUND, TITLE_BAR, 0.4), anchor="mm")

    top = bar_h + padding
    for r, row in enumerate(rows[:nrows]):
        y = top + r * cell_h
        col = 0
        for text, style, w in row:
            if w == 0:
                continue  # right half of a wide character, drawn with its left half
            if col >= cols:
                break
            x = padding + col * cell_w
            fg, bg = resolve_colours(style)
            cw = cell_w * w
            if bg != BACKGROUND:
                draw.rectangle([x, y, x + cw - 1, y + cell_h - 1], fill=bg)
            if text.strip() and not style.hidden:
                if text in BOX_ARMS:
                    draw_box(draw, text, x, y, cw, cell_h, fg, line)
                else:
                    font = fonts[(style.bold, style.italic)]
                    # Centre the glyph in its cell(s) so odd-width glyphs stay in their column.
                    gx = x + (cw - font.getlength(text)) / 2
                    draw.text((gx, y + baseline), text, font=font, fill=fg, anchor="ls")
            if style.underline:
                uy = y + baseline + max(2, descent // 2)
                draw.rectangle([x, uy, x + cw - 1, uy + line - 1], fill=fg)
            if style.strike:
                sy = y + baseline - ascent // 3
                draw.rectangle([x, sy, x + cw - 1, sy + line - 1], fill=fg)
            col += w
    return img


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("capture", help='file with the ANSI capture, or "-" for stdin')
    ap.add_argument("output", help="PNG to write")
    ap.add_argument("--cols", type=int, help="terminal width in cells (default: the widest line)")
    ap.add_argument("--rows", type=int, help="terminal height in rows (default: the number of lines)")
    ap.add_argument("--font-size", type=int, default=16)
    ap.add_argument("--font-dir", default=FONT_DIR, help="directory with DejaVuSansMono*.ttf")
    ap.add_argument("--title", default=None, help="draw a window title bar with this title")
    ap.add_argument("--padding", type=int, default=16)
    args = ap.parse_args()

    if args.capture == "-":
        text = sys.stdin.read()
    else:
        with open(args.capture, encoding="utf-8", errors="replace") as f:
            text = f.read()
    rows = parse(text)
    cols = args.cols or max((sum(c[2] for c in row) for row in rows), default=1)
    nrows = args.rows or len(rows)
    img = render(rows, cols, nrows, args.font_size, args.font_dir, args.title, args.padding)
    img.save(args.output, optimize=True)
    print(f"wrote {args.output} ({img.width}x{img.height})")


if __name__ == "__main__":
    main()
