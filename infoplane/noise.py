"""Noise in networks: the specs (`GaussianNoise`, `GaussianDropout`), noise after chosen layers (`add_noise`) and
sample propagation (`sample_propagation`).

The short public path of the noise API. The specs are plain data shared by `Layer(name, noise=...)`, the
`Recorder`, `NoisyEstimator` and the networks; the hooks live in `infoplane.nets`.
"""
from .nets import (
    GaussianDropout,
    GaussianNoise,
    PropagatedLayer,
    add_noise,
    noise_from_dict,
    sample_propagation,
)

__all__ = ["GaussianNoise", "GaussianDropout", "noise_from_dict", "add_noise", "sample_propagation", "PropagatedLayer"]
