"""Alt text for the chapters' figures, taken from their captions.

myst-nb writes a notebook figure as ``<img alt="../_images/3f9c….png">``: a screen
reader announces a file name, and a reader whose images do not load sees one. Every
chapter figure has a numbered caption (cell metadata ``mystnb.figure``), whose first
sentence says what the figure shows. This extension copies that sentence (two or more
when the first is short), with its
inline math spelled in plain Unicode (``\\mathcal N(0, I)`` becomes ``N(0, I)``), into
the ``alt`` of every image in the figure that has no alt text of its own.

It runs on ``doctree-resolved``, after myst-nb's post-transforms have turned each output
into an image node, so it sees the images that the HTML will show.
"""

from __future__ import annotations

import re
from typing import Any

from docutils import nodes
from sphinx.application import Sphinx

# LaTeX commands that appear in the captions, spelled as a reader would say them.
_SYMBOLS = {
    "alpha": "α", "beta": "β", "delta": "δ", "epsilon": "ε", "eta": "η", "lambda": "λ",
    "mu": "μ", "phi": "φ", "pi": "π", "rho": "ρ", "sigma": "σ", "tau": "τ", "theta": "θ",
    "Sigma": "Σ", "times": "×", "cdot": "·", "mid": "|", "le": "≤", "ge": "≥", "leq": "≤",
    "geq": "≥", "approx": "≈", "sim": "~", "infty": "∞", "log": "log", "exp": "exp",
    "max": "max", "min": "min", "to": "→", "odot": "⊙", "|": "‖", "lvert": "|",
    "rvert": "|", "quad": " ", "qquad": " ", ",": " ", ";": " ", "!": "",
}
_WRAPPERS = re.compile(r"\\(?:mathcal|mathbb|mathrm|mathbf|operatorname|text|texttt|"
                       r"boldsymbol|hat|tilde|bar)\s*(?:\{([^{}]*)\}|(\w))")
_COMMAND = re.compile(r"\\([A-Za-z]+|[|,;!])")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9])")


def latex_to_text(latex: str) -> str:
    """Spell a short piece of inline LaTeX in plain Unicode, for alt text.

    >>> latex_to_text(r"\\mathbb E[x \\mid z = \\mu(x)]")
    'E[x | z = μ(x)]'
    >>> latex_to_text(r"16 \\times \\log_2 128")
    '16 × log_2 128'
    """
    text = latex
    for _ in range(3):  # nested wrappers, innermost first
        text = _WRAPPERS.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2),
                             text)
    text = _COMMAND.sub(lambda m: _SYMBOLS.get(m.group(1), m.group(1)), text)
    text = re.sub(r"[{}]", "", text)
    return re.sub(r"\s+", " ", text).strip()


def plain_text(node: nodes.Node) -> str:
    """A caption's text, with its math spelled by :func:`latex_to_text`."""
    parts = []
    for child in node.findall(nodes.Text):
        parent = child.parent
        if isinstance(parent, nodes.math):
            parts.append(latex_to_text(child.astext()))
        else:
            parts.append(child.astext())
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def first_sentence(text: str, min_chars: int = 80) -> str:
    """The first sentence of ``text``, or the first few when the first is shorter than
    ``min_chars`` (a caption may open with "One test digit of each class (columns).")."""
    sentences = _SENTENCE_END.split(text)
    summary = sentences[0]
    for sentence in sentences[1:]:
        if len(summary) >= min_chars:
            break
        summary = f"{summary} {sentence}"
    return summary


def _needs_alt(image: nodes.image) -> bool:
    alt = image.get("alt", "")
    return not alt or alt == image.get("uri") or alt.endswith((".png", ".jpg", ".svg"))


def add_alt_text(app: Sphinx, doctree: nodes.document, docname: str) -> None:
    """Give every image of a captioned figure the caption's first sentence as alt."""
    for figure in doctree.findall(nodes.figure):
        caption = next(iter(figure.findall(nodes.caption)), None)
        if caption is None:
            continue
        alt = first_sentence(plain_text(caption))
        if not alt:
            continue
        for image in figure.findall(nodes.image):
            if _needs_alt(image):
                image["alt"] = alt


def setup(app: Sphinx) -> dict[str, Any]:
    """Register the handler.

    Returns
    -------
    dict
        Extension metadata: safe for parallel reading and writing.
    """
    app.connect("doctree-resolved", add_alt_text)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
