"""dSprites-style data with known factors, and image pairs for weak supervision.

Import these from here (``from autoencoders.dsprites import ProceduralSprites``); the
code lives in four modules, one per responsibility, and this module re-exports their
public names:

:mod:`autoencoders.factor_images`
    :class:`~autoencoders.factor_images.FactorImages`, the interface that the
    datasets share: images indexed by a grid of discrete ground-truth factors, which
    is what disentanglement metrics need.
:mod:`autoencoders.procedural_sprites`
    :class:`~autoencoders.procedural_sprites.ProceduralSprites` (alias ``Shapes2D``)
    renders images on the fly from the dSprites factor grid: 3 shapes (square,
    ellipse, heart) x 6 scales in ``[0.5, 1]`` x 40 orientations x 32 x 32
    positions. **This is not the original dSprites**, a stored file of 737,280 images
    (Matthey et al. 2017) that must be downloaded (``load_dsprites`` reads it when it
    is available). The exact pixel shapes, their sizes, the range of positions and
    the orientation grid differ (details in :mod:`autoencoders.procedural_sprites`),
    so numbers measured on it are not comparable with published dSprites numbers.
:mod:`autoencoders.dsprites_file`
    :func:`~autoencoders.dsprites_file.load_dsprites` loads the original dSprites
    file, for readers with internet access, as a
    :class:`~autoencoders.dsprites_file.DSprites` behind the same interface.
:mod:`autoencoders.weak_pairs`
    :func:`~autoencoders.weak_pairs.sample_pairs` and
    :class:`~autoencoders.weak_pairs.WeakPairs` make the image pairs of the
    weakly-supervised setting of Locatello et al. (2020): two images that share all
    but ``k`` factors.

The names here are the same objects as in their home modules; to change a module
constant such as ``DSPRITES_URL``, assign it in its home module
(:mod:`autoencoders.dsprites_file`).
"""

from __future__ import annotations

from autoencoders.dsprites_file import DOWNLOAD_TIMEOUT_S as DOWNLOAD_TIMEOUT_S
from autoencoders.dsprites_file import DSPRITES_FILENAME as DSPRITES_FILENAME
from autoencoders.dsprites_file import DSPRITES_URL as DSPRITES_URL
from autoencoders.dsprites_file import DSprites as DSprites
from autoencoders.dsprites_file import load_dsprites as load_dsprites
from autoencoders.factor_images import FactorImages as FactorImages
from autoencoders.factor_images import RngLike as RngLike
from autoencoders.procedural_sprites import ProceduralSprites as ProceduralSprites
from autoencoders.procedural_sprites import Shapes2D as Shapes2D
from autoencoders.weak_pairs import WeakPairs as WeakPairs
from autoencoders.weak_pairs import _sample_pair_factors as _sample_pair_factors
from autoencoders.weak_pairs import sample_pairs as sample_pairs

__all__ = [
    "FactorImages",
    "ProceduralSprites",
    "Shapes2D",
    "DSprites",
    "load_dsprites",
    "sample_pairs",
    "WeakPairs",
    "DSPRITES_FILENAME",
    "DSPRITES_URL",
]
