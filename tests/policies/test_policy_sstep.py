"""S-step math against independent truth: torch.distributions KL, a numerical optimum, a known linear policy."""

import numpy as np
import pytest
import torch
from torch.distributions import MultivariateNormal, kl_divergence

from gps_ros.core.linear_gaussian import LinearGaussianPolicy
from gps_ros.policies.gaussian_policy import GaussianPolicy
from gps_ros.policies.networks import PolicyArchitecture
from gps_ros.policies.sstep import SStep, SStepConfig, closed_form_covariance, precision_weighted_loss


def random_spd(rng, shape, d):
    A = rng.standard_normal((*shape, d, d))
    return A @ np.swapaxes(A, -1, -2) + 0.5 * np.eye(d)


def kl_sum(mu_pi, sigma, mu, cov):
    """sum over all leading axes of KL(N(mu_pi, sigma) || N(mu, cov))."""
    t = lambda a: torch.tensor(a, dtype=torch.float64)
    p = MultivariateNormal(t(mu_pi), covariance_matrix=t(np.broadcast_to(sigma, cov.shape)))
    return float(kl_divergence(p, MultivariateNormal(t(mu), covariance_matrix=t(cov))).sum())


def test_loss_is_the_kl_up_to_mean_independent_terms():
    rng = np.random.default_rng(0)
    N, T, dU = 3, 4, 2
    mu_pi, mu = rng.standard_normal((2, N, T, dU))
    # one local covariance per (t, i), shared by the samples j of condition i: samples 0,1 of condition 0, sample 2 of 1
    C_ti = random_spd(rng, (2, T), dU)
    cov = C_ti[[0, 0, 1]]
    sigma = random_spd(rng, (), dU)
    loss = precision_weighted_loss(
        torch.as_tensor(mu_pi.reshape(-1, dU)), torch.as_tensor(mu.reshape(-1, dU)),
        torch.as_tensor(np.linalg.inv(cov).reshape(-1, dU, dU)),
    ).sum()
    # the mean-independent terms of the KL are the KL with equal means
    mean_part = kl_sum(mu_pi, sigma, mu, cov) - kl_sum(mu, sigma, mu, cov)
    # the paper's S-step objective (MDGPS B.2) is 2 x KL
    assert float(loss) == pytest.approx(2 * mean_part, rel=1e-10)


def test_sstep_returns_the_kl_mean_part_of_the_fitted_policy():
    rng = np.random.default_rng(1)
    N, T, dO, dU = 2, 5, 3, 2
    obs, mu = rng.standard_normal((N, T, dO)), rng.standard_normal((N, T, dU))
    cov = random_spd(rng, (N, T), dU)
    policy = GaussianPolicy(PolicyArchitecture("mlp", dO, dU), device="cpu", seed=0)
    loss = SStep(policy, SStepConfig(iterations=3, batch_size=4)).update(obs, mu, np.linalg.inv(cov))
    mu_pi = policy.act_batch(obs)
    mean_part = kl_sum(mu_pi, policy.covariance, mu, cov) - kl_sum(mu, policy.covariance, mu, cov)
    assert loss == pytest.approx(2 * mean_part, rel=1e-4)


def test_closed_form_covariance_matches_numerical_optimum():
    rng = np.random.default_rng(2)
    N, T, dU = 3, 6, 3
    precision = np.linalg.inv(random_spd(rng, (N, T), dU))
    P = torch.as_tensor(precision)
    # Sigma = L L^T with positive diagonal: log-diagonal + strictly lower parameters
    raw = torch.zeros(dU, dU, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([raw], max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-14, line_search_fn="strong_wolfe")

    def objective():
        L = torch.tril(raw, -1) + torch.diag(torch.exp(torch.diagonal(raw)))
        S = L @ L.T
        return torch.einsum("ntij,ji->", P, S) - N * T * torch.logdet(S)

    def closure():
        opt.zero_grad()
        f = objective()
        f.backward()
        return f

    for _ in range(5):
        opt.step(closure)
    L = torch.tril(raw, -1) + torch.diag(torch.exp(torch.diagonal(raw)))
    sigma_gd = (L @ L.T).detach().numpy()

    np.testing.assert_allclose(closed_form_covariance(precision), sigma_gd, rtol=1e-6, atol=1e-9)
    policy = GaussianPolicy(PolicyArchitecture("mlp", 2, dU), device="cpu", seed=0)
    SStep(policy, SStepConfig(iterations=1)).update(rng.standard_normal((N, T, 2)), np.zeros((N, T, dU)), precision)
    np.testing.assert_allclose(policy.covariance, sigma_gd, rtol=1e-6, atol=1e-9)


def test_mlp_fits_linear_gaussian_policy_means():
    rng = np.random.default_rng(3)
    N, T, dX, dU = 20, 10, 4, 2
    K = rng.standard_normal((dU, dX))
    k = rng.standard_normal(dU)
    lg = LinearGaussianPolicy(np.broadcast_to(K, (T, dU, dX)), np.broadcast_to(k, (T, dU)), random_spd(rng, (T,), dU))
    # off-centre, unevenly scaled states exercise the input normalisation
    scale, centre = np.array([0.1, 1.0, 5.0, 2.0]), np.array([3.0, -1.0, 10.0, 0.0])

    def states(n):
        return centre + scale * rng.standard_normal((n, T, dX))

    X = states(N)
    mu = np.einsum("tux,ntx->ntu", lg.K, X) + lg.k
    precision = np.broadcast_to(lg.inv_cov, (N, T, dU, dU))
    policy = GaussianPolicy(PolicyArchitecture("mlp", dX, dU), device="cpu", seed=0)

    def numpy_loss(pred):
        d = pred - mu
        return np.einsum("nti,ntij,ntj->", d, precision, d)

    loss0 = numpy_loss(policy.act_batch(X))
    losses = []
    sstep = SStep(policy, SStepConfig(iterations=1500, batch_size=64, lr=3e-3))
    loss = sstep.update(X, mu, precision, progress=lambda p: losses.append(p.mean_loss))

    assert loss == pytest.approx(numpy_loss(policy.act_batch(X)), rel=1e-4)
    assert loss < 1e-3 * loss0
    assert len(losses) == 15
    X_test = states(5)
    mu_test = np.einsum("tux,ntx->ntu", lg.K, X_test) + lg.k
    # RMS rather than max error: a ReLU net with 200 training states is loosest at the tails
    rms = lambda a, b: np.sqrt(np.mean((a - b) ** 2))
    assert rms(policy.act_batch(X), mu) < 0.05 * mu.std()
    assert rms(policy.act_batch(X_test), mu_test) < 0.1 * mu.std()


def test_warm_start_keeps_network_optimizer_and_normalization():
    rng = np.random.default_rng(4)
    N, T, dO, dU = 4, 10, 3, 2
    W = rng.standard_normal((dU, dO))
    obs = 5 + 2 * rng.standard_normal((N, T, dO))
    precision = np.broadcast_to(np.eye(dU), (N, T, dU, dU))
    policy = GaussianPolicy(PolicyArchitecture("mlp", dO, dU), device="cpu", seed=0)
    sstep = SStep(policy, SStepConfig(iterations=800, batch_size=40, lr=3e-3))
    sstep.update(obs, obs @ W.T, precision)
    norm = policy.normalization
    # new data from a shifted distribution: one more step must start from the trained network
    obs2 = obs + 1.0
    fresh = GaussianPolicy(PolicyArchitecture("mlp", dO, dU), device="cpu", seed=0)
    untrained = SStep(fresh, SStepConfig(iterations=1)).update(obs2, obs2 @ W.T, precision)
    steps_before = float(sstep.optimizer.state[next(iter(policy.network.parameters()))]["step"])
    sstep.config = SStepConfig(iterations=1)
    second = sstep.update(obs2, obs2 @ W.T, precision)
    assert second < 0.05 * untrained
    assert policy.normalization is norm  # fitted once, kept
    assert sstep.optimizer.state[next(iter(policy.network.parameters()))]["step"] == steps_before + 1


@pytest.mark.parametrize("schedule", ["cosine", "constant"])
def test_learning_rate_schedule_restarts_every_call(schedule):
    rng = np.random.default_rng(5)
    N, T, dO, dU, steps, lr = 2, 5, 3, 2, 10, 2e-3
    policy = GaussianPolicy(PolicyArchitecture("mlp", dO, dU), device="cpu", seed=0)
    sstep = SStep(policy, SStepConfig(iterations=steps, batch_size=4, lr=lr, lr_schedule=schedule))
    rates = []
    sstep.optimizer.register_step_pre_hook(lambda opt, args, kwargs: rates.append(opt.param_groups[0]["lr"]))
    for _ in range(2):
        sstep.update(rng.standard_normal((N, T, dO)), rng.standard_normal((N, T, dU)), np.broadcast_to(np.eye(dU), (N, T, dU, dU)))
    step = np.arange(steps)
    expected = 0.5 * lr * (1 + np.cos(np.pi * step / steps)) if schedule == "cosine" else np.full(steps, lr)
    np.testing.assert_allclose(rates, np.tile(expected, 2), rtol=1e-12)


def test_unknown_learning_rate_schedule_is_refused():
    with pytest.raises(ValueError, match="lr_schedule.*'step'"):
        SStepConfig(lr_schedule="step")


def dot_images(rng, n, size=12):
    """n images [n, size * size] with one bright Gaussian dot each, and its (column, row) [n, 2]."""
    where = rng.uniform(1.5, size - 2.5, (n, 2))
    grid = np.arange(size)
    col = np.exp(-0.5 * ((grid[None, :] - where[:, :1]) / 0.8) ** 2)
    row = np.exp(-0.5 * ((grid[None, :] - where[:, 1:]) / 0.8) ** 2)
    return 255 * (row[:, :, None] * col[:, None, :]).reshape(n, -1), where


def pose_architecture(pose_dim=2, size=12):
    return PolicyArchitecture("cnn", 1 + size * size, 1, hidden_sizes=(8,), conv_channels=(4,), conv_kernels=(3,),
                              conv_strides=(1,), image_shape=(1, size, size), image_slice=(1, 1 + size * size),
                              pose_dim=pose_dim)


def standardized_pose_error(policy, obs, where):
    """Mean squared error of the pose head against the dot's (column, row), both standardised."""
    with torch.no_grad():
        _, pose = policy.mean_and_pose(torch.tensor(obs, dtype=torch.float32))
    z = (where - where.mean(0)) / where.std(0)
    return float(((pose.numpy() - z) ** 2).sum(1).mean())


def dot_task(seed, N=20, T=10, n_test=100):
    """S-step inputs (obs [N, T, dO], target_mu, precision, pose [N, T, 2]) for a policy that ignores the
    dot, and held-out (obs [n_test, dO], where [n_test, 2]) to measure the pose head on."""
    rng = np.random.default_rng(seed)
    images, where = dot_images(rng, N * T)
    obs = np.concatenate([rng.standard_normal((N * T, 1)), images], axis=1).reshape(N, T, -1)
    test_images, test_where = dot_images(rng, n_test)
    test_obs = np.concatenate([np.zeros((n_test, 1)), test_images], axis=1)
    inputs = (obs, np.zeros((N, T, 1)), np.broadcast_to(np.eye(1), (N, T, 1, 1)), where.reshape(N, T, 2))
    return inputs, (test_obs, test_where)


def test_pose_loss_teaches_the_feature_points_where_the_dot_is():
    (obs, mu, precision, pose), held_out = dot_task(6)
    policy = GaussianPolicy(pose_architecture(), device="cpu", seed=0)
    before = standardized_pose_error(policy, *held_out)
    SStep(policy, SStepConfig(iterations=1500, batch_size=64, lr=3e-3, pose_weight=1.0, pose_state=("dot",))).update(
        obs, mu, precision, pose=pose)
    # a held-out dot's position is read off the feature points (standardised variance: 2)
    assert standardized_pose_error(policy, *held_out) < 0.1 < before


def test_pose_pretraining_locates_the_dot_on_the_first_call_only():
    (obs, mu, precision, pose), held_out = dot_task(7)
    policy = GaussianPolicy(pose_architecture(), device="cpu", seed=0)
    before = standardized_pose_error(policy, *held_out)
    sstep = SStep(policy, SStepConfig(iterations=1, batch_size=64, lr=3e-3, pose_weight=1.0, pose_state=("dot",),
                                      pose_pretrain_iterations=1500, progress_every=500))
    phases = []
    sstep.update(obs, mu, precision, pose=pose, progress=lambda p: phases.append((p.phase, p.iteration, p.iterations)))
    # one policy step cannot place the feature points; the pretraining before it did
    assert standardized_pose_error(policy, *held_out) < 0.1 < before
    assert phases == [("pose pretraining", 500, 1500), ("pose pretraining", 1000, 1500),
                      ("pose pretraining", 1500, 1500), ("policy", 1, 1)]
    phases.clear()
    sstep.update(obs, mu, precision, pose=pose, progress=lambda p: phases.append((p.phase, p.iteration, p.iterations)))
    assert phases == [("policy", 1, 1)]


def test_pose_loss_inputs_are_checked():
    N, T = 2, 3
    obs = np.zeros((N, T, pose_architecture().dO))
    mu, precision = np.zeros((N, T, 1)), np.broadcast_to(np.eye(1), (N, T, 1, 1))
    with pytest.raises(ValueError, match="pose_weight: expected >= 0, got -1"):
        SStepConfig(pose_weight=-1.0)
    expected = r"^pose_state: expected state slice names exactly when pose_weight > 0, got \['dot'\] with pose_weight 0.0"
    with pytest.raises(ValueError, match=expected):
        SStepConfig(pose_state=("dot",))
    with pytest.raises(ValueError, match=r"^pose_state: .*got \[\] with pose_weight 1.0"):
        SStepConfig(pose_weight=1.0)
    with pytest.raises(ValueError, match="pose_pretrain_iterations: expected >= 0, got -1"):
        SStepConfig(pose_pretrain_iterations=-1)
    with pytest.raises(ValueError, match="^pose_pretrain_iterations: 100 needs pose_weight > 0.*got pose_weight 0"):
        SStepConfig(pose_pretrain_iterations=100)
    pose_config = SStepConfig(iterations=1, pose_weight=1.0, pose_state=("dot",))
    with pytest.raises(ValueError, match=r"pose_weight: 1.0 needs a policy with a pose head.*pose_dim 0"):
        SStep(GaussianPolicy(pose_architecture(pose_dim=0), device="cpu"), pose_config)
    with pytest.raises(ValueError, match="pose_dim: expected 0, or a positive size for kind 'cnn', got 2 for kind 'mlp'"):
        PolicyArchitecture("mlp", 3, 1, pose_dim=2)
    with_head = GaussianPolicy(pose_architecture(), device="cpu")
    with pytest.raises(ValueError, match="pose: given, but pose_weight is 0"):
        SStep(with_head, SStepConfig(iterations=1)).update(obs, mu, precision, pose=np.zeros((N, T, 2)))
    sstep = SStep(with_head, pose_config)
    with pytest.raises(ValueError, match="pose: pose_weight is 1.0, which needs pose targets"):
        sstep.update(obs, mu, precision)
    with pytest.raises(ValueError, match=r"pose.*\[2, 3, 2\]"):
        sstep.update(obs, mu, precision, pose=np.zeros((N, T, 3)))
