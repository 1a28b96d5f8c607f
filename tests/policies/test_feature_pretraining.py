"""Vision pre-training: the feature points learn where a spot is; only the vision layers change."""

import numpy as np
import pytest
import torch

from gps_ros.policies.feature_pretraining import PretrainConfig, pretrain_feature_points
from gps_ros.policies.networks import PolicyArchitecture, SpatialSoftmaxNetwork

C, H, W = 3, 16, 16


def _spots(rng, n):
    """Images [n, C, H, W] (0-255): a light background, a 2x2 green spot and a 2x2 red distractor at
    random places; and the green spot's centre [n, 2] in pixels."""
    images = np.full((n, C, H, W), 230.0)
    centres = np.empty((n, 2))
    for i in range(n):
        for colour in ((230.0, 30.0, 30.0), (30.0, 230.0, 30.0)):  # the green spot is drawn last, on top
            r, c = rng.integers(0, H - 1), rng.integers(0, W - 1)
            images[i, :, r : r + 2, c : c + 2] = np.array(colour)[:, None, None]
        centres[i] = (c + 0.5, r + 0.5)
    return images, centres


def _readout_rms(net, images, centres, test_images, test_centres):
    """RMS error (pixels) of the best linear read-out of the feature points, fitted on images, on test_images."""
    with torch.no_grad():
        def design(x):
            points = net.spatial_softmax(net.convs(torch.tensor(x / 255.0, dtype=torch.float32))).numpy()
            return np.c_[points, np.ones(len(x))]
        readout = np.linalg.lstsq(design(images), centres, rcond=None)[0]
        return float(np.sqrt(((design(test_images) @ readout - test_centres) ** 2).sum(axis=1).mean()))


def _network():
    torch.manual_seed(0)
    arch = PolicyArchitecture("cnn", 2 + C * H * W, 2, hidden_sizes=(8,), conv_channels=(8, 8), conv_kernels=(3, 3),
                              conv_strides=(1, 1), image_shape=(C, H, W), image_slice=(2, 2 + C * H * W))
    return SpatialSoftmaxNetwork(arch)


def test_pretraining_makes_the_feature_points_locate_a_spot():
    rng = np.random.default_rng(0)
    images, centres = _spots(rng, 200)
    test_images, test_centres = _spots(rng, 100)
    net = _network()
    head = {k: v.clone() for k, v in net.head.state_dict().items()}
    untrained = _readout_rms(net, images, centres, test_images, test_centres)
    error = pretrain_feature_points(net, images, centres, PretrainConfig(iterations=1500, batch_size=32, lr=3e-3))
    assert error < 0.05 * centres.var(axis=0).sum()
    # the feature points now carry the green spot's position, which random vision layers mix up with the
    # red one's: a least-squares read-out on them predicts unseen images' spots far better than before
    trained = _readout_rms(net, images, centres, test_images, test_centres)
    assert trained < 0.3 * untrained
    assert trained < 0.15 * np.sqrt(test_centres.var(axis=0).sum())
    for k, v in net.head.state_dict().items():
        assert torch.equal(v, head[k])  # the policy's fully connected part is left alone


def test_bad_inputs_name_the_field():
    net = _network()
    images, centres = _spots(np.random.default_rng(1), 4)
    with pytest.raises(ValueError, match="images"):
        pretrain_feature_points(net, images[:, :2], centres)
    with pytest.raises(ValueError, match="positions"):
        pretrain_feature_points(net, images, centres[:3])
    with pytest.raises(ValueError, match="iterations"):
        PretrainConfig(iterations=0)
