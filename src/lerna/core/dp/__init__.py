"""Differential privacy for federated rounds: clipping, Gaussian noise, accounting, budgets.

DP-FedAvg (McMahan et al. 2018): each device clips its update to L2 norm S, the aggregate gets
Gaussian noise of standard deviation z * S (z the noise multiplier), and an accountant turns
(z, sampling rate q, rounds r) into (epsilon, delta). Noise is central (the MPC service adds it in
two-server mode) or distributed (each device adds a share in SecAgg+ mode, so that only the
unmasked sum carries the full noise). Where noise meets the secure-aggregation lattice it is a
discrete Gaussian in quantised units (``discrete_gaussian``), and the accountant is given the
multiplier ``effective_noise_multiplier`` derives for the lattice. See docs/privacy.md for the
dropout caveat.
"""

from lerna.core.dp.accountant import PrivacyAccountant, PrivacyBudget, PrivacySpent
from lerna.core.dp.clipping import clip_l2
from lerna.core.dp.config import PrivacyConfig, PrivacyMode
from lerna.core.dp.discrete import discrete_gaussian, noise_rng
from lerna.core.dp.lattice import effective_noise_multiplier
from lerna.core.dp.noise import central_noise, distributed_noise, distributed_noise_std

__all__ = [
    "PrivacyAccountant",
    "PrivacyBudget",
    "PrivacyConfig",
    "PrivacyMode",
    "PrivacySpent",
    "central_noise",
    "clip_l2",
    "discrete_gaussian",
    "distributed_noise",
    "distributed_noise_std",
    "effective_noise_multiplier",
    "noise_rng",
]
