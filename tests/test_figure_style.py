"""The book's figure limits (autoencoders.figure_style) and the check that enforces them
on every figure the chapters draw (tests/scripts/figure_check_startup.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless, whatever MPLBACKEND says; before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import nbformat  # noqa: E402
import pytest  # noqa: E402

from autoencoders.figure_style import (  # noqa: E402
    BOOK_STYLE,
    MAX_FIGURE_WIDTH,
    MIN_FONT_SIZE,
    figure_problems,
    use_book_style,
)

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _fresh_style():
    with matplotlib.rc_context():
        yield
    plt.close("all")


def _drawn(fig):
    fig.canvas.draw()
    return fig


def test_a_figure_within_the_limits_has_no_problems():
    fig, ax = plt.subplots(figsize=(MAX_FIGURE_WIDTH, 3), dpi=100)
    ax.plot([0, 1], [0, 1], label="line")
    ax.set_title("title", fontsize=MIN_FONT_SIZE)
    ax.legend(fontsize=MIN_FONT_SIZE)
    assert figure_problems(_drawn(fig)) == []


def test_too_wide_and_too_small_are_reported():
    fig, ax = plt.subplots(figsize=(7.5, 3), dpi=100)
    ax.set_title("a small title", fontsize=8)
    assert figure_problems(_drawn(fig)) == [
        "7.5 in wide (at most 7.0)",
        "'a small title' at 8.0 pt (at least 9.0)",
    ]


def test_tick_labels_are_checked_once_drawn():
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    ax.plot([0, 1000], [0, 1])
    ax.tick_params(labelsize=7)
    problems = figure_problems(_drawn(fig))
    assert any("'1000' at 7.0 pt" in p for p in problems), problems


def test_hidden_and_empty_texts_are_ignored():
    fig, ax = plt.subplots(figsize=(4, 3), dpi=100)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.text(0.5, 0.5, "hidden", fontsize=5).set_visible(False)
    ax.text(0.5, 0.5, "   ", fontsize=5)
    ax.text(0.5, 0.5, "transparent", fontsize=5, alpha=0)
    assert figure_problems(_drawn(fig)) == []


def test_sizes_are_taken_at_the_figure_dpi():
    """A 14-inch figure at 50 dpi is 700 px wide, but its text shrinks by half."""
    fig, ax = plt.subplots(figsize=(14, 2), dpi=50)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("ten points", fontsize=10)
    assert figure_problems(_drawn(fig)) == ["'ten points' at 5.0 pt (at least 9.0)"]
    fig2, ax2 = plt.subplots(figsize=(3.5, 2), dpi=200)
    ax2.set_xticks([])
    ax2.set_yticks([])
    ax2.set_title("five points", fontsize=5)
    assert figure_problems(_drawn(fig2)) == []


def test_figure_problems_rejects_a_non_figure():
    with pytest.raises(TypeError, match="matplotlib Figure, got Axes"):
        figure_problems(plt.subplots()[1])


def test_book_style_keeps_default_text_within_the_limits():
    """matplotlib's defaults draw "small" text at 8.3 pt; the book's style does not."""
    with matplotlib.rc_context({"legend.fontsize": "small", "xtick.labelsize": "small"}):
        fig_small, ax_small = plt.subplots(figsize=(6, 3), dpi=100)
        ax_small.plot([0, 1], [0, 1], label="a")
        ax_small.legend()
        assert figure_problems(_drawn(fig_small)), "the control should have small text"
    use_book_style()
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1], label="a")
    ax.legend(title="legend")
    fig.colorbar(ax.imshow([[0, 1]]), ax=ax)
    ax.set_title("t")
    ax.set_xlabel("x")
    fig.suptitle("s")
    assert tuple(fig.get_size_inches()) == BOOK_STYLE["figure.figsize"]
    assert figure_problems(_drawn(fig)) == []


def test_the_kernel_check_logs_a_figure_that_breaks_the_limits(tmp_path, monkeypatch):
    """The start-up file that conftest gives every kernel logs a bad figure, not a good one."""
    from nbclient import NotebookClient

    from tests.conftest import read_figure_log

    startup = tmp_path / "ipython" / "profile_default" / "startup"
    startup.mkdir(parents=True)
    shutil.copy(REPO / "tests" / "scripts" / "figure_check_startup.py", startup / "50-check.py")
    log = tmp_path / "figures.jsonl"
    cells = [
        "import matplotlib.pyplot as plt\n"
        "fig, ax = plt.subplots(figsize=(6, 2), dpi=100)\n"
        "ax.set_title('fine')",
        "fig, ax = plt.subplots(figsize=(9, 2), dpi=100)\n"
        "ax.set_title('tiny', fontsize=6)",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    env = {"IPYTHONDIR": str(tmp_path / "ipython"), "AUTOENCODERS_FIGURE_LOG": str(log),
           "MPLBACKEND": "Agg"}
    monkeypatch.setattr(os, "environ", {**os.environ, **env})
    NotebookClient(nb, timeout=120).execute()
    installed, problems = read_figure_log(log)
    assert installed
    assert problems == ["'fig, ax = plt.subplots(figsize=(9, 2), dpi=100)': "
                        "9.0 in wide (at most 7.0); 'tiny' at 6.0 pt (at least 9.0)"]
