"""The papers' soft-rectifier policy: fits checked against known Gaussians, gradients and
Jacobians against finite differences, the I-projection's covariance against its closed form."""

import numpy as np
import pytest
import torch

from gps_ros.policies.softplus_policy import PolicyFitSettings, SoftplusPolicy


def test_max_likelihood_recovers_linear_gaussian_policy():
    # softplus(z) − softplus(−z) = z, so 2·dX hidden units can represent a linear mean exactly.
    rng = np.random.default_rng(0)
    dX, dU, N = 2, 2, 4000
    K = np.array([[1.0, -0.5], [0.3, 2.0]])
    k = np.array([0.2, -1.0])
    std = np.array([0.3, 0.8])
    X = rng.standard_normal((N, dX))
    U = X @ K.T + k + std * rng.standard_normal((N, dU))
    policy = SoftplusPolicy(dX, dU, hidden=8, seed=1)
    policy.set_normalization(X)
    policy.fit_max_likelihood(X, U, settings=PolicyFitSettings(iterations=1000, weight_decay=0.0))
    X_test = rng.uniform(-1.0, 1.0, (200, dX))
    np.testing.assert_allclose(policy.mean(X_test), X_test @ K.T + k, atol=0.06)
    # The ML variance's relative standard error is sqrt(2/N) ≈ 2 %.
    np.testing.assert_allclose(np.sqrt(np.diag(policy.cov)), std, rtol=0.06)


def test_weights_select_samples():
    rng = np.random.default_rng(1)
    X = rng.standard_normal((400, 1))
    U = np.where(np.arange(400)[:, None] < 200, 1.0, -1.0) + 0.1 * rng.standard_normal((400, 1))
    weights = (np.arange(400) < 200).astype(float)
    policy = SoftplusPolicy(1, 1, hidden=3, seed=0)
    policy.fit_max_likelihood(X, U, weights)
    # Unweighted, the mean would be near 0; only the weighted half (targets +1) counts.
    np.testing.assert_allclose(policy.mean(X), 1.0, atol=0.15)


def _finite_difference_gradient(loss_fn, params, eps=1e-6):
    grads = []
    for p in params:
        g = torch.zeros_like(p)
        flat = p.data.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + eps
            plus = loss_fn().item()
            flat[i] = old - eps
            minus = loss_fn().item()
            flat[i] = old
            g.view(-1)[i] = (plus - minus) / (2 * eps)
        grads.append(g)
    return grads


def test_i_projection_gradient_matches_finite_differences():
    rng = np.random.default_rng(2)
    N, dX, dU = 30, 3, 2
    policy = SoftplusPolicy(dX, dU, hidden=4, init_std=0.7, seed=3)
    policy.set_normalization(rng.standard_normal((50, dX)))
    L = rng.standard_normal((N, dU, dU))
    data = [torch.from_numpy(a) for a in (
        rng.standard_normal((N, dX)), rng.standard_normal((N, dU)), L @ np.swapaxes(L, 1, 2) + np.eye(dU), rng.uniform(0.1, 2, N)
    )]

    def loss_fn():
        return policy.i_projection_loss(*data)

    params = policy.parameters()
    for p in params:
        p.grad = None
    loss_fn().backward()
    with torch.no_grad():
        expected = _finite_difference_gradient(loss_fn, params)
    for p, g in zip(params, expected):
        np.testing.assert_allclose(p.grad.numpy(), g.numpy(), rtol=1e-5, atol=1e-7)


def test_i_projection_covariance_is_closed_form():
    # min over diagonal Σ of Σ_i w_i [tr(Σ P_i) − log|Σ|] gives σ_d² = Σ w / Σ_i w_i (P_i)_dd.
    rng = np.random.default_rng(4)
    N, dX, dU = 200, 2, 2
    X = rng.standard_normal((N, dX))
    L = 0.5 * rng.standard_normal((N, dU, dU))
    P = L @ np.swapaxes(L, 1, 2) + np.eye(dU)
    w = rng.uniform(0.5, 1.5, N)
    policy = SoftplusPolicy(dX, dU, hidden=4, seed=0)
    policy.fit_i_projection(X, X @ np.ones((dX, dU)), P, w, PolicyFitSettings(iterations=300))
    expected = w.sum() / np.einsum("n,nd->d", w, np.diagonal(P, axis1=1, axis2=2))
    np.testing.assert_allclose(np.diag(policy.cov), expected, rtol=1e-4)


def test_jacobian_and_linearization_match_finite_differences():
    rng = np.random.default_rng(5)
    dX, dU, S, T = 3, 2, 4, 5
    policy = SoftplusPolicy(dX, dU, hidden=6, seed=2)
    policy.set_normalization(rng.standard_normal((40, dX)) * 2 + 1)
    X = rng.standard_normal((S, T, dX))
    eps = 1e-6
    fd = np.stack([(policy.mean(X + eps * e) - policy.mean(X - eps * e)) / (2 * eps) for e in np.eye(dX)], axis=-1)
    np.testing.assert_allclose(policy.jacobian(X), fd, atol=1e-7)
    lin = policy.linearize(X)
    np.testing.assert_allclose(lin.K, fd.mean(axis=0), atol=1e-7)
    # The linearisation reproduces the sample-average mean at the sample-average state.
    np.testing.assert_allclose(np.einsum("tux,tx->tu", lin.K, X.mean(0)) + lin.k, policy.mean(X).mean(0), atol=1e-12)
    np.testing.assert_allclose(lin.cov, np.broadcast_to(policy.cov, (T, dU, dU)))


def test_act_adds_scaled_noise():
    policy = SoftplusPolicy(2, 2, hidden=3, init_std=0.5, seed=0)
    x = np.array([0.1, -0.2])
    np.testing.assert_allclose(policy.act(x, np.array([1.0, -2.0])) - policy.act(x), [0.5, -1.0])


@pytest.mark.parametrize(
    "call, field",
    [
        (lambda p: p.fit_max_likelihood(np.zeros((5, 2)), np.zeros((4, 2))), "U"),
        (lambda p: p.fit_max_likelihood(np.zeros((5, 3)), np.zeros((5, 2))), "X"),
        (lambda p: p.fit_max_likelihood(np.zeros((5, 2)), np.zeros((5, 2)), -np.ones(5)), "weights"),
        (lambda p: p.fit_i_projection(np.zeros((2, 2)), np.zeros((2, 2)), -np.tile(np.eye(2), (2, 1, 1))), "precision"),
        (lambda p: p.fit_i_projection(np.zeros((2, 2)), np.zeros((2, 3)), np.tile(np.eye(2), (2, 1, 1))), "target"),
        (lambda p: p.linearize(np.zeros((3, 2))), "X"),
        (lambda p: p.act(np.zeros(3)), "x"),
    ],
)
def test_bad_input_names_field(call, field):
    policy = SoftplusPolicy(2, 2, hidden=3)
    before = [p.detach().clone() for p in policy.parameters()]
    with pytest.raises(ValueError, match=field):
        call(policy)
    for p, b in zip(policy.parameters(), before):
        assert torch.equal(p.detach(), b)


@pytest.mark.parametrize("kwargs, field", [({"hidden": 0}, "hidden"), ({"init_std": -1.0}, "init_std"), ({"dX": 0}, "dX")])
def test_bad_construction_names_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        SoftplusPolicy(**{"dX": 2, "dU": 1, "hidden": 3, **kwargs})


def test_inputs_select_the_state_entries_the_network_sees():
    rng = np.random.default_rng(6)
    policy = SoftplusPolicy(4, 2, hidden=3, seed=0, inputs=[1, 3])
    policy.set_normalization(rng.standard_normal((20, 4)))
    X = rng.standard_normal((5, 4))
    moved = X.copy()
    moved[:, [0, 2]] += 10.0
    np.testing.assert_allclose(policy.mean(moved), policy.mean(X))
    J = policy.jacobian(X)
    assert np.all(J[..., [0, 2]] == 0)
    eps = 1e-6
    fd = (policy.mean(X + eps * np.eye(4)[3]) - policy.mean(X - eps * np.eye(4)[3])) / (2 * eps)
    np.testing.assert_allclose(J[..., 3], fd, atol=1e-7)


@pytest.mark.parametrize("inputs", [[0, 4], [1, 1], []])
def test_bad_inputs_name_field(inputs):
    with pytest.raises(ValueError, match="inputs"):
        SoftplusPolicy(4, 2, hidden=3, inputs=inputs)
