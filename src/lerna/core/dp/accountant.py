"""Privacy accounting for DP-FedAvg over `dp-accounting`, and the per-app epsilon budget.

Each round is one Poisson-sampled Gaussian mechanism (sampling rate q = expected cohort size /
population, noise multiplier z); r rounds compose. RDP (Mironov 2017) is the default because it is
fast and what DP-FedAvg papers report; PLD is tighter and available. Cohort selection must really
be (close to) Poisson sampling for these figures to hold; fixed-size cohorts are a known gap.
Rounds whose noise is a discrete Gaussian on the quantised lattice must be accounted at
`lerna.core.dp.lattice.effective_noise_multiplier` (or `secure_update.accounting_noise_multiplier`),
not at the configured z; that module says which of the resulting figures are exact.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import dp_accounting
from dp_accounting import pld, rdp

Method = Literal["rdp", "pld"]


@dataclass(frozen=True)
class PrivacySpent:
    epsilon: float
    delta: float
    rounds: int


@dataclass(frozen=True)
class PrivacyAccountant:
    """(epsilon, delta) after r rounds at sampling rate q and noise multiplier z."""

    noise_multiplier: float
    sampling_rate: float
    delta: float
    method: Method = "rdp"

    def __post_init__(self) -> None:
        if not (math.isfinite(self.noise_multiplier) and self.noise_multiplier > 0):
            raise ValueError("noise_multiplier must be positive (z = 0 gives no privacy)")
        if not 0 < self.sampling_rate <= 1:
            raise ValueError(f"sampling_rate must be in (0, 1], got {self.sampling_rate}")
        if not 0 < self.delta < 1:
            raise ValueError(f"delta must be in (0, 1), got {self.delta}")

    def _event(self) -> dp_accounting.DpEvent:
        return dp_accounting.PoissonSampledDpEvent(
            self.sampling_rate, dp_accounting.GaussianDpEvent(self.noise_multiplier)
        )

    def spent(self, rounds: int) -> PrivacySpent:
        if rounds < 0:
            raise ValueError("rounds must be >= 0")
        if rounds == 0:
            return PrivacySpent(epsilon=0.0, delta=self.delta, rounds=0)
        accountant: dp_accounting.PrivacyAccountant = (
            rdp.RdpAccountant() if self.method == "rdp" else pld.PLDAccountant()
        )
        accountant.compose(self._event(), rounds)
        return PrivacySpent(
            epsilon=float(accountant.get_epsilon(self.delta)), delta=self.delta, rounds=rounds
        )

    def epsilon(self, rounds: int) -> float:
        return self.spent(rounds).epsilon


@dataclass(frozen=True)
class PrivacyBudget:
    """An app's epsilon budget: training may run a round only if it stays within the budget."""

    accountant: PrivacyAccountant
    epsilon_budget: float

    def __post_init__(self) -> None:
        if not self.epsilon_budget > 0:
            raise ValueError("epsilon_budget must be positive")

    def allows(self, rounds_done: int) -> bool:
        """Whether one more round keeps epsilon within the budget."""
        return self.accountant.epsilon(rounds_done + 1) <= self.epsilon_budget

    def max_rounds(self, limit: int = 1_000_000) -> int:
        """The most rounds the budget affords (epsilon grows with rounds; binary search)."""
        if not self.allows(0):
            return 0
        lo, hi = 1, 2
        while hi <= limit and self.accountant.epsilon(hi) <= self.epsilon_budget:
            lo, hi = hi, hi * 2
        hi = min(hi, limit + 1)
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self.accountant.epsilon(mid) <= self.epsilon_budget:
                lo = mid
            else:
                hi = mid
        return lo
