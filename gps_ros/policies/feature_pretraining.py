"""Pre-training of the spatial-softmax CNN's vision layers by position regression.

Learning to see a small target only from the S-step's action loss is slow: the feature
points must first become the target's image position, and the precision-weighted action
error is a weak, indirect signal for that. Following the spatial-feature architecture's
own training recipe (Levine, Finn, Darrell, Abbeel, JMLR 2016: the vision layers are
pre-trained to predict object positions), the conv layers and the spatial softmax are
trained with a temporary linear read-out from the feature points to a known position
(in simulation, the target's), which is then discarded; GPS starts from the trained
vision layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gps_ros.core.validation import check_array
from gps_ros.policies.networks import SpatialSoftmaxNetwork
from gps_ros.policies.threads import torch_threads


@dataclass(frozen=True)
class PretrainConfig:
    """iterations: Adam steps; batch_size: images per step; lr: Adam's rate (annealed to 0, cosine);
    seed: minibatch order and read-out initialisation; cpu_threads: torch CPU threads."""

    iterations: int = 10000
    batch_size: int = 32
    lr: float = 1e-3
    seed: int = 0
    cpu_threads: int = 1

    def __post_init__(self) -> None:
        for name in ("iterations", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name}: expected a positive integer, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"lr: expected > 0, got {self.lr}")


def pretrain_feature_points(
    network: SpatialSoftmaxNetwork, images: np.ndarray, positions: np.ndarray, config: PretrainConfig = PretrainConfig(),
    image_range: float = 255.0,
) -> float:
    """Train network.convs and network.spatial_softmax in place so that a linear map of the
    feature points predicts positions [N, P] from images [N, C, H, W] (pixel values in
    [0, image_range], as the policy sees them before scaling). Returns the final mean squared
    error over all N images (summed over the P coordinates)."""
    C, H, W = network.image_shape
    images = check_array("images", images, (None, C, H, W))
    positions = check_array("positions", positions, (images.shape[0], None))
    if images.shape[0] < 2:
        raise ValueError(f"images: expected at least 2 images, got {images.shape[0]}")
    with torch_threads(config.cpu_threads):
        return _pretrain(network, images, positions, config, image_range)


def _pretrain(network, images, positions, config, image_range) -> float:
    generator = torch.Generator().manual_seed(config.seed)
    device = next(network.parameters()).device
    x = torch.tensor(images / image_range, dtype=torch.float32, device=device)
    y = torch.tensor(positions, dtype=torch.float32, device=device)
    # Centred, unit-scale targets, so that one learning rate suits any units.
    y_std = y.std(dim=0).clamp_min(1e-6)
    y = (y - y.mean(dim=0)) / y_std

    def points(batch: torch.Tensor) -> torch.Tensor:
        return network.spatial_softmax(network.convs(batch))

    with torch.no_grad():
        n_points = points(x[:1]).shape[1]
    readout = nn.Linear(n_points, y.shape[1]).to(device)
    torch.nn.init.normal_(readout.weight, std=1.0 / np.sqrt(n_points), generator=generator)
    torch.nn.init.zeros_(readout.bias)
    params = [*network.convs.parameters(), *network.spatial_softmax.parameters(), *readout.parameters()]
    optimizer = torch.optim.Adam(params, lr=config.lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.iterations)
    for _ in range(config.iterations):
        idx = torch.randint(0, x.shape[0], (min(config.batch_size, x.shape[0]),), generator=generator)
        loss = ((readout(points(x[idx])) - y[idx]) ** 2).sum(dim=1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    with torch.no_grad():
        error = torch.cat([readout(points(x[s : s + 256])) - y[s : s + 256] for s in range(0, x.shape[0], 256)])
    return float(((error * y_std) ** 2).sum(dim=1).mean())
