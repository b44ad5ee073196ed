"""Progress bars: on in Jupyter and Colab, off (and saved nowhere) when the book is built.

tqdm's notebook bar passes ``disable=False`` explicitly, so ``TQDM_DISABLE`` alone never
turned the widgets off; :func:`autoencoders.utils.progress_bar` reads it itself.
"""

from __future__ import annotations

import os

import nbformat
import pytest

from autoencoders.utils import progress_bar, progress_disabled


@pytest.mark.parametrize("value", ["1", "true", "YES", " on "])
def test_progress_disabled_reads_true_values(monkeypatch, value):
    monkeypatch.setenv("TQDM_DISABLE", value)
    assert progress_disabled() is True


@pytest.mark.parametrize("value", ["", "0", "false", "No", "off"])
def test_progress_disabled_reads_false_values(monkeypatch, value):
    monkeypatch.setenv("TQDM_DISABLE", value)
    assert progress_disabled() is False


def test_progress_disabled_defaults_to_on(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert progress_disabled() is False


def test_progress_disabled_rejects_other_values(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "maybe")
    with pytest.raises(ValueError, match=r"TQDM_DISABLE.*'maybe'"):
        progress_disabled()


def test_progress_bar_wraps_an_iterable(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert list(progress_bar(range(3), desc="runs")) == [0, 1, 2]
    monkeypatch.setenv("TQDM_DISABLE", "0")
    bar = progress_bar(["a", "b"], desc="runs")
    assert bar.disable is False and bar.total == 2
    assert list(bar) == ["a", "b"]


def test_progress_bar_refuses_its_own_disable_argument():
    with pytest.raises(TypeError, match="disable"):
        progress_bar(total=3, disable=True)


def test_notebook_bar_is_disabled_by_the_variable(monkeypatch):
    """The widget bar itself (what tqdm.auto gives in Jupyter) honours the variable."""
    pytest.importorskip("ipywidgets")
    import tqdm.auto
    import tqdm.notebook

    monkeypatch.setattr(tqdm.auto, "tqdm", tqdm.notebook.tqdm)
    monkeypatch.setenv("TQDM_DISABLE", "1")
    # The bug this works around: tqdm's own notebook bar ignores the variable.
    plain = tqdm.notebook.tqdm(total=3, display=False)
    assert plain.disable is False
    plain.close()
    bar = progress_bar(total=3)
    assert isinstance(bar, tqdm.notebook.tqdm)
    assert bar.disable is True
    assert not hasattr(bar, "container"), "a disabled bar must build no widget"
    bar.close()


CELL = """
import torch
from autoencoders.train import fit
from autoencoders.data import TensorLoader
from autoencoders.recipes import mlp_ae
x = torch.rand(64, 1, 4, 4)
model = mlp_ae(2, in_shape=(1, 4, 4), hidden=(8,))
fit(model, TensorLoader(x, batch_size=16), epochs=2)
"""


def _widget_outputs(env: dict[str, str], monkeypatch) -> list[str]:
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(CELL)])
    monkeypatch.setattr(os, "environ", {**os.environ, "AUTOENCODERS_DEVICE": "cpu", **env})
    NotebookClient(nb, timeout=120).execute()
    kinds = [k for o in nb.cells[0].outputs for k in o.get("data", {})]
    return [k for k in kinds if "widget" in k]


def test_fit_saves_no_widget_into_a_notebook_run_with_tqdm_disable(monkeypatch):
    pytest.importorskip("ipywidgets")
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    # The control: without the variable, fit's bar is a widget saved into the notebook.
    assert _widget_outputs({}, monkeypatch), "expected a widget bar without TQDM_DISABLE"
    assert _widget_outputs({"TQDM_DISABLE": "1"}, monkeypatch) == []
