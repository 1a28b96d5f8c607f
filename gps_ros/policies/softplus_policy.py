"""The policy of variational and constrained GPS (Levine & Koltun 2013 Sec. 5, 2014 Sec. 4).

π(u|x) = N(μ(x), diag(σ²)): μ(x) = W₂ softplus(W₁ x̃ + b₁) + b₂ with softplus(z) = log(1 + exp z)
(one hidden layer, linear output), x̃ = (x − shift) · scale the normalised state, and a learned
state-independent diagonal covariance (parameterised by log σ). Trained in float64 by full-batch
L-BFGS, either by weighted maximum likelihood (the M-projection of variational GPS) or by the
I-projection objective of constrained GPS Sec. 3.2.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.validation import check_array, check_positive_definite


@dataclass(frozen=True)
class PolicyFitSettings:
    """iterations: L-BFGS iterations of one fit; weight_decay: ½ weight_decay |W|² on the network's
    weights (not the biases or log σ), which keeps the soft rectifiers from saturating;
    min_log_std / max_log_std: bounds on log σ during the fit."""

    iterations: int = 200
    weight_decay: float = 1e-6
    min_log_std: float = -10.0
    max_log_std: float = 5.0

    def __post_init__(self) -> None:
        if int(self.iterations) < 1:
            raise ValueError(f"iterations: expected a positive integer, got {self.iterations}")
        if not self.weight_decay >= 0:
            raise ValueError(f"weight_decay: expected a number >= 0, got {self.weight_decay}")
        if not self.min_log_std < self.max_log_std:
            raise ValueError(f"min_log_std, max_log_std: expected min < max, got {self.min_log_std}, {self.max_log_std}")


class SoftplusPolicy:
    """π(u|x) = N(μ(x), diag(exp(2 log_std))) with a one-hidden-layer soft-rectifier mean network.

    dX, dU: state and action sizes; hidden: hidden units (the papers use 5 or 10); init_std: the
    initial σ of every action; seed: the initial weights (torch's global RNG is left alone);
    inputs: the state indices the network sees (all when None), e.g. without a locomotion task's
    root position, on which a gait must not depend (∂μ/∂x is 0 for the others).
    """

    def __init__(self, dX: int, dU: int, hidden: int, init_std: float = 1.0, seed: int = 0,
                 inputs: list[int] | None = None) -> None:
        for name, value in (("dX", dX), ("dU", dU), ("hidden", hidden)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if not (np.isfinite(init_std) and init_std > 0):
            raise ValueError(f"init_std: expected a positive finite number, got {init_std!r}")
        index = np.arange(dX) if inputs is None else np.asarray(inputs)
        if index.ndim != 1 or index.size < 1 or not np.issubdtype(index.dtype, np.integer) \
                or index.min() < 0 or index.max() >= dX or len(set(index.tolist())) != index.size:
            raise ValueError(f"inputs: expected distinct state indices in [0, {dX}), got {inputs!r}")
        self.dX, self.dU, self.hidden = int(dX), int(dU), int(hidden)
        self.inputs = index
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.network = nn.Sequential(nn.Linear(index.size, hidden), nn.Softplus(), nn.Linear(hidden, dU)).double()
        self.log_std = nn.Parameter(torch.full((dU,), float(np.log(init_std)), dtype=torch.float64))
        self.shift = np.zeros(index.size)
        self.scale = np.ones(index.size)

    def parameters(self) -> list[nn.Parameter]:
        return [*self.network.parameters(), self.log_std]

    def mean_weights(self) -> np.ndarray:
        """The mean network's weights and biases as one vector [P] (a copy; log σ not included)."""
        return torch.nn.utils.parameters_to_vector(self.network.parameters()).detach().numpy().copy()

    def set_mean_weights(self, weights: np.ndarray) -> None:
        """Load the mean network's weights from a vector [P] as mean_weights() returns (copied)."""
        size = sum(p.numel() for p in self.network.parameters())
        weights = check_array("weights", weights, (size,))
        with torch.no_grad():
            torch.nn.utils.vector_to_parameters(torch.tensor(weights, dtype=torch.float64), self.network.parameters())

    def load_parameters(self, other: SoftplusPolicy) -> None:
        """Copy other's mean network weights and log σ into this policy (the same sizes and inputs;
        the input normalisation is not copied)."""
        mine, theirs = (self.dX, self.dU, self.hidden, self.inputs.tolist()), (other.dX, other.dU, other.hidden, other.inputs.tolist())
        if mine != theirs:
            raise ValueError(f"other: expected a policy with (dX, dU, hidden, inputs) = {mine}, got {theirs}")
        self.set_mean_weights(other.mean_weights())
        with torch.no_grad():
            self.log_std.copy_(other.log_std)

    @property
    def cov(self) -> np.ndarray:
        """Σ^π [dU, dU] (diagonal)."""
        return np.diag(np.exp(2.0 * self.log_std.detach().numpy()))

    def set_normalization(self, X: np.ndarray, min_std: float = 1e-6) -> None:
        """Normalise inputs by the mean and std of the states X [N, dX] (kept for the policy's lifetime)."""
        X = check_array("X", X, (None, self.dX))
        if X.shape[0] < 1:
            raise ValueError(f"X: expected at least one state, got shape {list(X.shape)}")
        self.shift = X[:, self.inputs].mean(axis=0)
        self.scale = 1.0 / np.maximum(X[:, self.inputs].std(axis=0), min_std)

    def mean_torch(self, X: torch.Tensor) -> torch.Tensor:
        """μ(x) for X [N, dX] (float64) -> [N, dU]; differentiable in the parameters."""
        shift = torch.as_tensor(self.shift)
        scale = torch.as_tensor(self.scale)
        return self.network((X[:, torch.as_tensor(self.inputs)] - shift) * scale)

    def mean(self, X: np.ndarray) -> np.ndarray:
        """μ(x) for X [..., dX] -> [..., dU]."""
        X = check_array("X", X, (*([None] * (np.ndim(X) - 1)), self.dX))
        with torch.no_grad():
            return self.mean_torch(torch.from_numpy(X.reshape(-1, self.dX))).numpy().reshape(*X.shape[:-1], self.dU)

    def act(self, x: np.ndarray, noise: np.ndarray | None = None) -> np.ndarray:
        """u = μ(x) + σ ⊙ noise for x [dX] and standard-normal noise [dU] (the mean when None)."""
        u = self.mean(check_array("x", x, (self.dX,))[None])[0]
        if noise is None:
            return u
        return u + np.exp(self.log_std.detach().numpy()) * check_array("noise", noise, (self.dU,))

    def jacobian(self, X: np.ndarray) -> np.ndarray:
        """∂μ/∂x at X [..., dX] -> [..., dU, dX] (analytic: W₂ diag(sigmoid(z)) W₁ diag(scale) on the inputs)."""
        X = check_array("X", X, (*([None] * (np.ndim(X) - 1)), self.dX))
        W1 = self.network[0].weight.detach().numpy()
        b1 = self.network[0].bias.detach().numpy()
        W2 = self.network[2].weight.detach().numpy()
        z = ((X[..., self.inputs] - self.shift) * self.scale) @ W1.T + b1
        gate = 1.0 / (1.0 + np.exp(-z))
        J = np.zeros((*X.shape[:-1], self.dU, self.dX))
        J[..., self.inputs] = np.einsum("uh,...h,hx->...ux", W2, gate, W1 * self.scale)
        return J

    def linearize(self, X: np.ndarray) -> LinearGaussianPolicy:
        """π linearised per time step, averaged over sampled states X [S, T, dX] (VGPS Sec. 4, CGPS Sec. 3.1).

        K^π_t = mean_s ∂μ/∂x(x_ts), k^π_t = mean_s μ(x_ts) − K^π_t mean_s x_ts, Σ^π_t = Σ^π.
        """
        X = check_array("X", X, (None, None, self.dX))
        if X.shape[0] < 1 or X.shape[1] < 1:
            raise ValueError(f"X: expected shape [S, T, {self.dX}] with S, T >= 1, got {list(X.shape)}")
        K = self.jacobian(X).mean(axis=0)
        k = self.mean(X).mean(axis=0) - np.einsum("tux,tx->tu", K, X.mean(axis=0))
        return LinearGaussianPolicy(K, k, np.tile(self.cov, (X.shape[1], 1, 1)))

    def negative_log_likelihood(self, X: torch.Tensor, U: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        """Σ_i w_i (−log π(u_i|x_i)) / Σ_i w_i, up to the constant ½ dU log 2π."""
        r = (U - self.mean_torch(X)) * torch.exp(-self.log_std)
        per_sample = 0.5 * (r**2).sum(dim=1) + self.log_std.sum()
        return (weights * per_sample).sum() / weights.sum()

    def i_projection_loss(
        self, X: torch.Tensor, target: torch.Tensor, precision: torch.Tensor, weights: torch.Tensor
    ) -> torch.Tensor:
        """CGPS Sec. 3.2: Σ_i w_i D_KL(π(u|x_i) ‖ N(target_i, precision_i⁻¹)) / Σ_i w_i, up to constants.

        Per sample ½[tr(Σ^π P_i) − log|Σ^π| + (target_i − μ(x_i))ᵀ P_i (target_i − μ(x_i))].
        """
        r = target - self.mean_torch(X)
        var = torch.exp(2.0 * self.log_std)
        trace = torch.einsum("nuu,u->n", precision, var)
        quad = torch.einsum("nu,nuv,nv->n", r, precision, r)
        per_sample = 0.5 * (trace + quad) - self.log_std.sum()
        return (weights * per_sample).sum() / weights.sum()

    def fit_max_likelihood(
        self, X: np.ndarray, U: np.ndarray, weights: np.ndarray | None = None,
        settings: PolicyFitSettings = PolicyFitSettings(),
    ) -> float:
        """Weighted maximum likelihood (the M-projection of VGPS): X [N, dX], U [N, dU], weights [N] >= 0
        (ones when None). Fits μ and σ; returns the final weighted negative log-likelihood."""
        X = check_array("X", X, (None, self.dX))
        N = X.shape[0]
        U = check_array("U", U, (N, self.dU))
        w = _check_weights(weights, N)
        data = tuple(torch.from_numpy(a) for a in (X, U, w))
        return self._fit(lambda: self.negative_log_likelihood(*data), settings)

    def fit_i_projection(
        self, X: np.ndarray, target: np.ndarray, precision: np.ndarray, weights: np.ndarray | None = None,
        settings: PolicyFitSettings = PolicyFitSettings(),
    ) -> float:
        """The I-projection of CGPS Sec. 3.2: X [N, dX] states sampled from q(x_t); target [N, dU] q's
        conditional means K_t x + k_t; precision [N, dU, dU] A_t⁻¹ (PD); weights [N] >= 0 the λ_t
        (ones when None). Returns the final loss (i_projection_loss)."""
        X = check_array("X", X, (None, self.dX))
        N = X.shape[0]
        target = check_array("target", target, (N, self.dU))
        precision = check_array("precision", precision, (N, self.dU, self.dU))
        check_positive_definite("precision", precision)
        w = _check_weights(weights, N)
        data = tuple(torch.from_numpy(a) for a in (X, target, 0.5 * (precision + np.swapaxes(precision, 1, 2)), w))
        return self._fit(lambda: self.i_projection_loss(*data), settings)

    def _fit(self, loss_fn, settings: PolicyFitSettings) -> float:
        params = self.parameters()
        weights = [self.network[0].weight, self.network[2].weight]
        optimizer = torch.optim.LBFGS(params, max_iter=int(settings.iterations), line_search_fn="strong_wolfe",
                                      tolerance_grad=1e-9, tolerance_change=1e-12, history_size=20)

        def closure() -> torch.Tensor:
            optimizer.zero_grad()
            loss = loss_fn() + 0.5 * settings.weight_decay * sum((W**2).sum() for W in weights)
            loss.backward()
            return loss

        optimizer.step(closure)
        with torch.no_grad():
            self.log_std.clamp_(settings.min_log_std, settings.max_log_std)
            return float(loss_fn())


def _check_weights(weights: np.ndarray | None, N: int) -> np.ndarray:
    if weights is None:
        return np.ones(N)
    w = check_array("weights", weights, (N,))
    if np.any(w < 0) or not w.sum() > 0:
        raise ValueError(f"weights: expected values >= 0 with a positive sum, got min {w.min()}, sum {w.sum()}")
    return w
