"""Chapters 6 and 7 switch to the original dSprites when ``load_dsprites`` finds it.

The real file (737,280 images, 3 GB unpacked) cannot be had here, and the chapters'
code uses the real factor grid, so a reduced-grid file cannot stand in either. Instead
a first cell replaces ``autoencoders.dsprites.load_dsprites`` by a function that returns
a :class:`~autoencoders.dsprites_file.DSprites` over the full grid, whose rows are 256
distinct images shared through ``row_of_index`` (the file reader itself is tested on
small files in ``test_dsprites``). The data sections of both chapters then run in a
fresh kernel, and must say that they use the original file and draw their figures.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

BOOK = Path(__file__).resolve().parents[1] / "book"
# each chapter's cells up to (not including) the first that needs the model zoo
STUB = """
from pathlib import Path
import autoencoders.dsprites as _dsprites
from autoencoders.dsprites_file import DSprites
from autoencoders.procedural_sprites import ProceduralSprites

def _stub_load_dsprites(root=None, download=True, device=None):
    ref = ProceduralSprites()
    f = ref.sample_factors(256, rng=0)
    packed = np.packbits(ref.images(f)[:, 0].numpy().astype(np.uint8), axis=-1)
    n = len(ref)
    levels = tuple(np.asarray(v, dtype=np.float64) for v in ref.factor_levels)
    return DSprites(packed, 64, ref.factor_sizes, levels,
                    np.arange(n, dtype=np.int64) % 256, Path("stub.npz"), device)

_dsprites.load_dsprites = _stub_load_dsprites
"""
CHAPTERS = {"06_beta_vae.ipynb": "### What \"disentangled\" means",
            "07_ada_gvae.ipynb": "## 2. Ada-GVAE"}


def _data_section(name: str, stop: str) -> nbformat.NotebookNode:
    nb = nbformat.read(BOOK / name, as_version=4)
    end = next(i for i, c in enumerate(nb.cells) if stop in c.source)
    nb.cells = nb.cells[:end]
    return nb


@pytest.mark.parametrize("name", sorted(CHAPTERS))
def test_chapter_uses_the_original_dsprites_when_load_dsprites_finds_it(name, monkeypatch):
    from nbclient import NotebookClient

    nb = _data_section(name, CHAPTERS[name])
    assert any("load_dsprites(download=False)" in c.source for c in nb.cells), name
    nb.cells.insert(0, nbformat.v4.new_code_cell(STUB))
    env = {"AUTOENCODERS_FAST": "1",
           "MPLBACKEND": "module://matplotlib_inline.backend_inline",
           "AUTOENCODERS_DEVICE": "cpu"}
    monkeypatch.setattr(os, "environ", {**os.environ, **env})
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(BOOK)}}).execute()
    printed = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                      for o in c.outputs)
    assert "data: the original dSprites file" in printed
    assert "ProceduralSprites (not the original" not in printed
    assert "737,280 images" in printed
    images = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
              if "image/png" in o.get("data", {})]
    kinds = [sorted(o.get("data", {})) for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert images, f"the data section drew no figure: {kinds}"
