"""book/_ext/figure_alt.py: a figure's caption becomes its image's alt text."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from docutils import nodes
from docutils.utils import new_document

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("figure_alt", REPO / "book" / "_ext" / "figure_alt.py")
figure_alt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(figure_alt)


def test_latex_is_spelled_in_plain_unicode():
    assert figure_alt.latex_to_text(r"\mathbb E[x \mid z = \mu(x)]") == "E[x | z = μ(x)]"
    assert figure_alt.latex_to_text(r"z \sim \mathcal N(0, I)") == "z ~ N(0, I)"
    assert figure_alt.latex_to_text(r"\sigma(\text{logits})") == "σ(logits)"
    assert figure_alt.latex_to_text(r"16 \times \log_2 128") == "16 × log_2 128"
    assert figure_alt.latex_to_text(r"\beta_{\max}") == "β_max"


def test_first_sentence_stops_at_a_full_stop_before_a_capital():
    text = "Decoded codes of the 2-D VAE, e.g. at $t = 0.5$. Look at the middle. More."
    first = "Decoded codes of the 2-D VAE, e.g. at $t = 0.5$."
    assert figure_alt.first_sentence(text, min_chars=10) == first
    # a short first sentence takes the next ones until the summary is long enough
    assert figure_alt.first_sentence(text, min_chars=60) == first + " Look at the middle."
    assert figure_alt.first_sentence("One sentence only") == "One sentence only"


def _figure(caption_children, alt=None):
    document = new_document("test")
    image = nodes.image(uri="../_images/abc.png")
    if alt is not None:
        image["alt"] = alt
    figure = nodes.figure("", image, nodes.caption("", "", *caption_children))
    document += figure
    return document, image


def test_images_of_a_captioned_figure_get_the_first_sentence_as_alt():
    children = [nodes.Text("Samples from the prior "), nodes.math("", r"\mathcal N(0, I)"),
                nodes.Text(" of the 20-D VAE, four rows of eight, each decoded to its mean image. "
                           "Look at the strokes.")]
    document, image = _figure(children)
    figure_alt.add_alt_text(None, document, "doc")
    alt = ("Samples from the prior N(0, I) of the 20-D VAE, four rows of eight, each "
           "decoded to its mean image.")
    assert image["alt"] == alt
    document, image = _figure(children, alt="../_images/abc.png")  # myst-nb's file name
    figure_alt.add_alt_text(None, document, "doc")
    assert image["alt"] == alt


def test_an_alt_text_written_by_the_author_is_kept():
    document, image = _figure([nodes.Text("A caption.")], alt="A hand-written description")
    figure_alt.add_alt_text(None, document, "doc")
    assert image["alt"] == "A hand-written description"
