"""autoencoders: AE, VAE and Ada-GVAE in PyTorch, with a complete loss API.

Every model follows one rhythm::

    model.build(x)                              # materialise lazy layers
    output = model(x)                           # a ModelOutput dataclass
    result = model.compute_loss(x, output)      # LossResult(objective, diagnostics)
    result.objective.backward()
"""

from ._base import BaseAutoencoder, ModelOutput
from .loss import (
    LikelihoodType,
    LossResult,
    distribution_mean,
    kl_divergence_diag_gaussian,
    log_likelihood,
)
from .utils import data_root, fast_mode, get_device, seed_everything
from .vanilla import AE, AEDecodeOutput, AEEncodeOutput, AEOutput
from .variational import (
    VAE,
    AdaGVAE,
    AdaGVAEOutput,
    FullyFactorizedGaussian,
    VAEDecodeOutput,
    VAEEncodeOutput,
    VAEOutput,
)

__version__ = "0.1.0"

__all__ = [
    "AE",
    "VAE",
    "AdaGVAE",
    "AEOutput",
    "AEEncodeOutput",
    "AEDecodeOutput",
    "VAEOutput",
    "VAEEncodeOutput",
    "VAEDecodeOutput",
    "AdaGVAEOutput",
    "FullyFactorizedGaussian",
    "BaseAutoencoder",
    "ModelOutput",
    "LossResult",
    "LikelihoodType",
    "log_likelihood",
    "kl_divergence_diag_gaussian",
    "distribution_mean",
    "seed_everything",
    "get_device",
    "fast_mode",
    "data_root",
    "__version__",
]
