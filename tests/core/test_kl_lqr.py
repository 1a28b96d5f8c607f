import mpmath as mp
import numpy as np
import pytest
from scipy.stats import multivariate_normal

from gps_ros.core.dynamics import InitialStateDistribution, LinearGaussianDynamics
from gps_ros.core.kl import policy_kl
from gps_ros.core.kl_lqr import (
    CStepConfig, backward_pass, deviation_coordinates, homogeneous_cost, homogeneous_dynamics, kl_constrained_lqr,
)
from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.core.linear_system import QuadraticStateCost, random_stable_system
from gps_ros.core.traj_distribution import QuadraticCost, expected_cost, forward

T, dX, dU = 15, 4, 2


def _problem(seed=0):
    rng = np.random.default_rng(seed)
    system = random_stable_system(rng, T, dX, dU)
    cost = QuadraticStateCost(np.diag([1.0, 0.5, 2.0, 0.2]), np.diag([0.1, 0.3]), rng.standard_normal(dX))
    x1 = InitialStateDistribution(rng.standard_normal(dX), 0.01 * np.eye(dX))
    p_bar = LinearGaussianPolicy(0.1 * rng.standard_normal((T, dU, dX)), 0.1 * rng.standard_normal((T, dU)),
                                 np.tile(0.5 * np.eye(dU), (T, 1, 1)))
    return rng, system, cost, x1, p_bar


def _riccati(A, B, c, Q, R, target, T):
    """Textbook finite-horizon LQR for ½(x − target)ᵀQ(x − target) + ½uᵀRu, x' = Ax + Bu + c."""
    P, p = np.zeros_like(A), np.zeros(len(A))
    K, k = [], []
    for _ in range(T):
        H = R + B.T @ P @ B
        Kt = -np.linalg.solve(H, B.T @ P @ A)
        kt = -np.linalg.solve(H, B.T @ (P @ c + p))
        p = Q @ -target + Kt.T @ R @ kt + (A + B @ Kt).T @ (P @ (B @ kt + c) + p)
        P = Q + (A + B @ Kt).T @ P @ (A + B @ Kt) + Kt.T @ R @ Kt
        K.append(Kt)
        k.append(kt)
    return np.array(K[::-1]), np.array(k[::-1])


def test_inactive_constraint_gives_the_plain_lqr_gains():
    _, system, cost, x1, p_bar = _problem()
    result = kl_constrained_lqr(system.dynamics(), x1, cost.quadratic(T), p_bar, epsilon=1e8)
    K, k = _riccati(system.A, system.B, system.c, cost.Q, cost.R, cost.target, T)
    assert not result.active
    np.testing.assert_allclose(result.policy.K, K, atol=1e-6)
    np.testing.assert_allclose(result.policy.k, k, atol=1e-6)


@pytest.mark.parametrize("epsilon", [0.5, 5.0, 50.0])
def test_active_constraint_meets_epsilon_and_monte_carlo_kl(epsilon):
    rng, system, cost, x1, p_bar = _problem(1)
    result = kl_constrained_lqr(system.dynamics(), x1, cost.quadratic(T), p_bar, epsilon)
    assert result.active and result.converged
    assert abs(result.kl - epsilon) <= 0.1 * epsilon
    # Monte-Carlo: E_p[Σ_t log p(u_t|x_t) − log p̄(u_t|x_t)] over trajectories sampled from p.
    N = 20_000
    samples = system.rollout(result.policy, rng.multivariate_normal(x1.mu, x1.sigma, N), rng.standard_normal((N, T, dU)), rng)
    log_ratio = np.zeros(N)
    for t in range(T):
        for pol, sign in ((result.policy, 1.0), (p_bar, -1.0)):
            mean = samples.X[:, t] @ pol.K[t].T + pol.k[t]
            log_ratio += sign * multivariate_normal(np.zeros(dU), pol.cov[t]).logpdf(samples.U[:, t] - mean)
    assert abs(log_ratio.mean() - result.kl) <= 4 * log_ratio.std() / np.sqrt(N) + 1e-3 * result.kl


def test_result_minimises_the_lagrangian():
    # At η the C-step policy minimises E[ℓ] + η KL(p ‖ p̄): random perturbations of K, k, C must not lower it.
    rng, system, cost, x1, p_bar = _problem(2)
    dynamics, quadratic = system.dynamics(), cost.quadratic(T)
    result = kl_constrained_lqr(dynamics, x1, quadratic, p_bar, 5.0)

    def lagrangian(p):
        traj = forward(p, dynamics, x1)
        return expected_cost(traj, quadratic).sum() + result.eta * policy_kl(p, p_bar, traj)

    best = lagrangian(result.policy)
    p = result.policy
    for _ in range(20):
        L = np.eye(dU) + 0.05 * rng.standard_normal((T, dU, dU))
        perturbed = LinearGaussianPolicy(p.K + 0.01 * rng.standard_normal(p.K.shape), p.k + 0.01 * rng.standard_normal(p.k.shape),
                                         L @ p.cov @ L.transpose(0, 2, 1))
        assert lagrangian(perturbed) > best


def test_non_pd_quu_raises_eta_instead_of_crashing():
    # A cost concave in u: Q_uu = −I/η + C̄⁻¹ is not PD for small η.
    _, system, cost, x1, p_bar = _problem(3)
    q = cost.quadratic(T)
    Lzz = q.Lzz.copy()
    Lzz[:, dX:, dX:] = -np.eye(dU)
    concave = QuadraticCost(q.c, q.lz, Lzz)
    result = kl_constrained_lqr(system.dynamics(), x1, concave, p_bar, 50.0, eta_start=1e-3)
    assert result.eta_raised
    assert result.eta > 0.5  # C̄⁻¹ = 2 I, so Q_uu is PD only for η > 1/2
    assert np.all(np.linalg.eigvalsh(result.policy.cov) > 0)
    if result.active:
        assert abs(result.kl - 50.0) <= 5.0


def test_bad_input_names_the_field():
    _, system, cost, x1, p_bar = _problem()
    with pytest.raises(ValueError, match="epsilon: expected a positive number, got 0"):
        kl_constrained_lqr(system.dynamics(), x1, cost.quadratic(T), p_bar, 0.0)
    with pytest.raises(ValueError, match=r"cost.lz: expected shape \[15, 6\]"):
        kl_constrained_lqr(system.dynamics(), x1, cost.quadratic(T - 1), p_bar, 1.0)
    with pytest.raises(ValueError, match="dynamics: expected T=15"):
        kl_constrained_lqr(random_stable_system(np.random.default_rng(0), T + 1, dX, dU).dynamics(), x1,
                           cost.quadratic(T), p_bar, 1.0)
    with pytest.raises(ValueError, match="kl_tolerance"):
        CStepConfig(kl_tolerance=1.5)


@pytest.mark.parametrize(
    ("sigma", "message"),
    [
        (np.diag([1.0, 1.0, -1.0, 1.0]), "x1.sigma: expected positive-definite"),
        (np.eye(dX) + np.triu(np.ones((dX, dX)), 1), "x1.sigma: expected symmetric"),
    ],
)
def test_bad_initial_state_covariance_names_the_field(sigma, message):
    _, system, cost, x1, p_bar = _problem()
    bad = InitialStateDistribution(x1.mu, sigma)
    with pytest.raises(ValueError, match=message):
        kl_constrained_lqr(system.dynamics(), bad, cost.quadratic(T), p_bar, 1.0)


# A linearised global policy with a huge gain along a direction the actions barely move
# (|K̄| ~ 2e3, f_u ~ 1e-3) that drives the dynamics unstable: the shape of the pr2_peg_blind
# failure (|K̄| ~ 2e3, closed-loop spectral radius ~1.3 per step).
def _unstable_p_bar_problem(gain, T_long):
    A = np.array([[1.0, 0.05], [0.0, 1.0]])
    B = np.array([[0.0], [1e-3]])
    F = np.tile(np.concatenate([A, B], axis=1), (T_long, 1, 1))
    dynamics = LinearGaussianDynamics(F, np.zeros((T_long, 2)), np.tile(1e-4 * np.eye(2), (T_long, 1, 1)))
    x1 = InitialStateDistribution(np.array([0.1, 0.0]), 1e-4 * np.eye(2))
    cost = QuadraticStateCost(np.eye(2), 1e-3 * np.eye(1), np.zeros(2)).quadratic(T_long)
    p_bar = LinearGaussianPolicy(np.tile([[gain, 0.0]], (T_long, 1, 1)), np.full((T_long, 1), 0.5),
                                 np.full((T_long, 1, 1), 0.1))
    return dynamics, x1, cost, p_bar


def _mp_c_step(dynamics, cost, p_bar, eta, x1=None):
    """Textbook backward pass on ℓ/η − log p̄ in (x, u) at 80 digits (mpmath); with x1 also the
    forward pass and Σ_t E D_KL(p(u|x_t) ‖ p̄(u|x_t)). Returns K, k, C (float arrays) and the KL."""
    mp.mp.dps = 80
    Tn, dUn, dXn = p_bar.K.shape
    M = lambda a: mp.matrix(np.asarray(a).tolist())  # noqa: E731
    Fx, Fu = [M(F[:, :dXn]) for F in dynamics.F], [M(F[:, dXn:]) for F in dynamics.F]
    Cinv = [M(np.linalg.inv(c)) for c in p_bar.cov]
    e = mp.mpf(eta)
    V, v = mp.zeros(dXn, dXn), mp.zeros(dXn, 1)
    Ks, ks, Cs = [None] * Tn, [None] * Tn, [None] * Tn
    for t in range(Tn - 1, -1, -1):
        Kb, kb = M(p_bar.K[t]), M(p_bar.k[t][:, None])
        Lxx, Lux, Luu = (M(cost.Lzz[t][r, c]) / e for r, c in ((np.s_[:dXn], np.s_[:dXn]), (np.s_[dXn:], np.s_[:dXn]),
                                                                 (np.s_[dXn:], np.s_[dXn:])))
        lx, lu = M(cost.lz[t][:dXn, None]) / e, M(cost.lz[t][dXn:, None]) / e
        f = M(dynamics.f[t][:, None])
        Qxx = Lxx + Kb.T * Cinv[t] * Kb + Fx[t].T * V * Fx[t]
        Qux = Lux - Cinv[t] * Kb + Fu[t].T * V * Fx[t]
        Quu = Luu + Cinv[t] + Fu[t].T * V * Fu[t]
        qx = lx + Kb.T * Cinv[t] * kb + Fx[t].T * (v + V * f)
        qu = lu - Cinv[t] * kb + Fu[t].T * (v + V * f)
        Quu_inv = mp.inverse(Quu)
        Ks[t], ks[t], Cs[t] = -Quu_inv * Qux, -Quu_inv * qu, Quu_inv
        V = Qxx + Qux.T * Ks[t]
        V = (V + V.T) / 2
        v = qx + Qux.T * ks[t]
    kl = None
    if x1 is not None:
        mu, S, kl = M(x1.mu[:, None]), M(x1.sigma), mp.mpf(0)
        for t in range(Tn):
            dK, dk = Ks[t] - M(p_bar.K[t]), ks[t] - M(p_bar.k[t][:, None])
            dmu = dK * mu + dk
            trace = lambda m: mp.fsum(m[i, i] for i in range(m.rows))  # noqa: E731
            kl += (trace(Cinv[t] * Cs[t]) + (dmu.T * Cinv[t] * dmu)[0] + trace(dK.T * Cinv[t] * dK * S)
                   - dUn + mp.log(mp.det(M(p_bar.cov[t])) / mp.det(Cs[t]))) / 2
            K, k = Ks[t], ks[t]
            mu_u = K * mu + k
            Sxu = S * K.T
            Suu = K * S * K.T + Cs[t]
            f, W = M(dynamics.f[t][:, None]), M(dynamics.W[t])
            mu_next = Fx[t] * mu + Fu[t] * mu_u + f
            S = Fx[t] * S * Fx[t].T + Fx[t] * Sxu * Fu[t].T + Fu[t] * Sxu.T * Fx[t].T + Fu[t] * Suu * Fu[t].T + W
            mu = mu_next
    as_array = lambda ms: np.array([[[float(m[i, j]) for j in range(m.cols)] for i in range(m.rows)] for m in ms])  # noqa: E731
    return as_array(Ks), as_array(ks)[:, :, 0], as_array(Cs), None if kl is None else float(kl)


@pytest.mark.parametrize("eta", [1e8, 1e12, 1e15])
def test_large_eta_against_an_unstable_p_bar_matches_exact_arithmetic(eta):
    # Regression (pr2_peg_blind, MDGPS iteration 11): in (x, u) coordinates the prior's x block
    # |K̄|²C̄⁻¹ ~ 4e7 cancels to V = O(1/η); its round-off, amplified by the unstable closed loop
    # (ρ ≈ 1.3 per step), gave gains off by 1e-4 here and, on the peg, an indefinite V and a
    # Q_uu not PD for every large η.
    dynamics, _, cost, p_bar = _unstable_p_bar_problem(2e3, 60)
    A_cl = dynamics.F[0, :, :2] + dynamics.F[0, :, 2:] @ p_bar.K[0]
    assert np.abs(np.linalg.eigvals(A_cl)).max() > 1.3
    Kh_bar = np.concatenate([p_bar.K, p_bar.k[:, :, None]], axis=2)
    Fh, Lcost = deviation_coordinates(homogeneous_dynamics(dynamics), homogeneous_cost(cost, 2), Kh_bar)
    Lprior = np.zeros_like(Lcost)
    Lprior[:, 3:, 3:] = p_bar.inv_cov
    solved = backward_pass(Fh, Lcost / eta + Lprior, 2)
    assert solved is not None
    Kh, chol = Kh_bar + solved[0], solved[1]
    K, k, C, _ = _mp_c_step(dynamics, cost, p_bar, eta)
    np.testing.assert_allclose(Kh[:, :, :2], K, rtol=1e-8, atol=1e-8 * np.abs(K).max())
    np.testing.assert_allclose(Kh[:, :, 2], k, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(chol @ np.swapaxes(chol, 1, 2), np.linalg.inv(C), rtol=1e-8)


def test_c_step_against_an_unstable_p_bar_meets_epsilon():
    # Before the fix: no convergence, η driven to eta_max and a policy with KL 3.8 returned.
    dynamics, x1, cost, p_bar = _unstable_p_bar_problem(2e3, 60)
    result = kl_constrained_lqr(dynamics, x1, cost, p_bar, 2.0, eta_start=1e16)
    assert result.active and result.converged and not result.eta_raised
    K, k, C, kl = _mp_c_step(dynamics, cost, p_bar, result.eta, x1)
    assert abs(kl - 2.0) <= 0.2
    assert result.kl == pytest.approx(kl, rel=1e-6)
    np.testing.assert_allclose(result.policy.K, K, rtol=1e-7, atol=1e-7 * np.abs(K).max())
    np.testing.assert_allclose(result.policy.cov, C, rtol=1e-7)


def test_p_bar_too_unstable_for_any_eta_raises_a_value_error():
    # ρ ≈ 1.45 per step over 80 steps: even at eta_max the exact KL to p̄ stays far above ε
    # (before: the eta_max policy was returned, KL 5.5e6).
    dynamics, x1, cost, p_bar = _unstable_p_bar_problem(4e3, 80)
    eta_max = CStepConfig().eta_max
    *_, kl_at_eta_max = _mp_c_step(dynamics, cost, p_bar, eta_max, x1)
    assert kl_at_eta_max > 1.0
    with pytest.raises(ValueError, match=r"KL to p_bar is .* > epsilon=1 even at eta_max=1e\+16: p_bar is unstable"):
        kl_constrained_lqr(dynamics, x1, cost, p_bar, 1.0)


def test_cost_concave_beyond_eta_max_raises_a_value_error():
    # Q_uu at the last step is L_uu/η + C̄⁻¹ = −1e20/1e16 + 2 < 0 for every η ≤ eta_max.
    _, system, cost, x1, p_bar = _problem(3)
    q = cost.quadratic(T)
    Lzz = q.Lzz.copy()
    Lzz[:, dX:, dX:] = -1e20 * np.eye(dU)
    with pytest.raises(ValueError, match=r"Q_uu not positive definite .* cost.Lzz\[u, u\] min eigenvalue -1e\+20"):
        kl_constrained_lqr(system.dynamics(), x1, QuadraticCost(q.c, q.lz, Lzz), p_bar, 5.0)
