r"""The book's figure style: figures that fit the text column, with readable text.

A figure is shown at its natural size when it is at most as wide as the column, so a
figure of :math:`w` inches saved at :math:`d` dots per inch occupies :math:`w d` pixels
and a font of :math:`s` points is drawn :math:`s\,d/72` pixels tall. The book keeps
:math:`w \le 7` inches at :math:`d = 100` (700 px, the width of the content column at a
1,300 px window) and :math:`s \ge 9` points, so no text is ever shrunk below 9 points.

:data:`BOOK_STYLE` holds matplotlib settings that keep to those limits by default;
:func:`use_book_style` applies them (every chapter calls it in its set-up cell), and
:func:`figure_problems` says where a finished figure breaks them (the test suite runs it
on every figure every chapter draws).
"""

from __future__ import annotations

from typing import Any

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.text import Text

__all__ = [
    "MAX_FIGURE_WIDTH",
    "MIN_FONT_SIZE",
    "REFERENCE_DPI",
    "BOOK_STYLE",
    "use_book_style",
    "figure_problems",
]

MAX_FIGURE_WIDTH = 7.0
"""Inches: the widest figure the book draws, the width of its text column (at the default
100 dpi a 7-inch figure is shown at its natural size, so 9-point text stays 9-point
text)."""

MIN_FONT_SIZE = 9.0
"""Points: the smallest text a figure may hold once it is shown at its natural size."""

REFERENCE_DPI = 100
"""Dots per inch at which a figure's inches and points are what the reader sees."""

BOOK_STYLE: dict[str, Any] = {
    "figure.figsize": (MAX_FIGURE_WIDTH, 3.5),
    "figure.dpi": 100,
    "savefig.dpi": "figure",
    "font.size": 10,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "legend.fontsize": 9,
    "legend.title_fontsize": 10,
    "figure.titlesize": 12,
    "image.cmap": "viridis",
}
"""matplotlib settings of the book's figures: 7 inches wide at 100 dpi, no text under
9 points (matplotlib's own default makes ``"small"`` text 8.3 points)."""


def use_book_style() -> None:
    """Apply :data:`BOOK_STYLE` to matplotlib's global settings (``rcParams``).

    Call it once, after importing :mod:`matplotlib.pyplot`, in a notebook's set-up cell.
    Fonts given explicitly (``fontsize=...``) and ``figsize`` still win; the test suite
    checks those with :func:`figure_problems`.
    """
    mpl.rcParams.update(BOOK_STYLE)


def _visible_texts(fig: Figure) -> list[Text]:
    texts = []
    for text in fig.findobj(Text):
        if not text.get_visible() or not text.get_text().strip():
            continue
        if text.get_alpha() == 0:
            continue
        # a tick label or title counts only when its axes is drawn
        axes = text.axes
        if axes is not None and not axes.get_visible():
            continue
        texts.append(text)
    return texts


def figure_problems(
    fig: Figure,
    max_width: float = MAX_FIGURE_WIDTH,
    min_fontsize: float = MIN_FONT_SIZE,
) -> list[str]:
    r"""Where a figure breaks the book's limits: too wide, or text too small.

    Parameters
    ----------
    fig : matplotlib.figure.Figure
        A figure that has been drawn (tick labels are only set at draw time), for
        example right after ``fig.canvas.draw()`` or ``savefig``.
    max_width : float, default :data:`MAX_FIGURE_WIDTH`
        Widest allowed figure, in inches.
    min_fontsize : float, default :data:`MIN_FONT_SIZE`
        Smallest allowed font, in points.

    Returns
    -------
    list of str
        One line per problem (empty when the figure is fine); a small text is named by
        its first 30 characters and its size.

    Notes
    -----
    Sizes are taken as the reader sees them: a figure saved at ``fig.dpi`` other than
    :data:`REFERENCE_DPI` is :math:`w\,d` pixels wide and its text scales by
    :math:`d/100`, so a 14-inch figure at 50 dpi passes the width check but its
    10-point text reads as 5 points.

    Examples
    --------
    >>> import matplotlib.pyplot as plt
    >>> fig, ax = plt.subplots(figsize=(8, 2), dpi=100)
    >>> _ = ax.set_title("tiny", fontsize=6)
    >>> figure_problems(fig)
    ['8.0 in wide (at most 7.0)', "'tiny' at 6.0 pt (at least 9.0)"]
    >>> plt.close(fig)
    """
    if not isinstance(fig, Figure):
        raise TypeError(f"fig must be a matplotlib Figure, got {type(fig).__name__}")
    problems = []
    scale = float(fig.dpi) / REFERENCE_DPI
    width = float(fig.get_size_inches()[0]) * scale
    if width > max_width + 1e-9:
        problems.append(f"{width:.1f} in wide (at most {max_width:.1f})")
    small: dict[tuple[str, float], None] = {}
    for text in _visible_texts(fig):
        size = float(text.get_fontsize()) * scale
        if size < min_fontsize - 1e-9:
            small[(text.get_text().strip()[:30], size)] = None
    problems += [f"{label!r} at {size:.1f} pt (at least {min_fontsize:.1f})" for label, size in small]
    return problems
