"""Spatial softmax: feature points of a sharp peak, autograd against finite differences, and its shift invariance
in the conv net (no channel can die)."""

import numpy as np
import pytest
import torch
from torch.func import functional_call

from gps_ros.policies.networks import PolicyArchitecture, SpatialSoftmax, build_network


def test_sharp_peak_gives_its_pixel_coordinates():
    H, W = 5, 8
    peaks = [(0, 0), (2, 5), (4, 7)]  # (row, column) per channel
    features = torch.zeros(1, len(peaks), H, W)
    for c, (r, col) in enumerate(peaks):
        features[0, c, r, col] = 100.0
    points = SpatialSoftmax(H, W)(features).detach().reshape(len(peaks), 2).numpy()
    expected = [(-1 + 2 * col / (W - 1), -1 + 2 * r / (H - 1)) for r, col in peaks]
    np.testing.assert_allclose(points, expected, atol=1e-6)


def test_uniform_map_gives_the_centre_and_temperature_sharpens():
    softmax = SpatialSoftmax(4, 6)
    np.testing.assert_allclose(softmax(torch.zeros(2, 3, 4, 6)).detach().numpy(), 0.0, atol=1e-7)
    # two equal-height bumps a pixel apart: a lower temperature moves the point towards the higher one
    features = torch.zeros(1, 1, 4, 6)
    features[0, 0, 1, 2], features[0, 0, 1, 3] = 1.0, 1.2
    hot = SpatialSoftmax(4, 6, temperature=1.0)(features)[0, 0].item()
    cold = SpatialSoftmax(4, 6, temperature=0.01)(features)[0, 0].item()
    assert cold == pytest.approx(-1 + 2 * 3 / 5, abs=1e-6)
    assert hot < cold


def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    module = SpatialSoftmax(3, 4, temperature=0.7).double()
    features = torch.randn(2, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    log_alpha = torch.tensor(np.log(0.7), dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda f, a: functional_call(module, {"log_alpha": a}, (f,)), (features, log_alpha))


def test_no_channel_dies_when_its_last_conv_output_falls_below_zero_everywhere():
    """The softmax is invariant to a constant added to a channel's map; a ReLU before it would instead
    zero that channel at every pixel, leaving a uniform softmax, the centre point and no gradient."""
    torch.manual_seed(0)
    C, H, W = 2, 6, 8
    arch = PolicyArchitecture("cnn", 1 + C * H * W, 1, conv_channels=(3, 2), conv_kernels=(3, 3), conv_strides=(1, 1),
                              image_shape=(C, H, W), image_slice=(1, 1 + C * H * W))
    network = build_network(arch)
    obs = torch.rand(4, arch.dO)
    before = network.feature_points(obs)
    with torch.no_grad():
        network.convs[-1].bias -= 100.0
    after = network.feature_points(obs)
    torch.testing.assert_close(after, before, atol=1e-5, rtol=0)
    assert before.std(dim=0).min() > 0  # every point still follows the image
    after.square().sum().backward()
    assert network.convs[-1].weight.grad.abs().sum(dim=(1, 2, 3)).min() > 0
