"""autoencoders: AE, VAE and Ada-GVAE in PyTorch, with a complete loss API.

Every model follows one rhythm::

    model.build(x)                              # materialise lazy layers
    output = model(x)                           # a ModelOutput dataclass
    result = model.compute_loss(x, output)      # LossResult(objective, diagnostics)
    result.objective.backward()
"""

from ._base import BaseAutoencoder, DecodeOutput, ModelOutput
from .likelihoods import (
    Likelihood,
    LikelihoodType,
    distribution_mean,
    log_likelihood,
    register_likelihood,
)
from .loss import LossResult, kl_divergence_diag_gaussian, log_normal_diag
from .utils import data_root, fast_mode, get_device, progress_bar, seed_everything
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
    "DecodeOutput",
    "LossResult",
    "LikelihoodType",
    "Likelihood",
    "register_likelihood",
    "log_likelihood",
    "log_normal_diag",
    "kl_divergence_diag_gaussian",
    "distribution_mean",
    "seed_everything",
    "progress_bar",
    "get_device",
    "fast_mode",
    "data_root",
    "__version__",
]
