"""Mean networks of the global policy: an MLP and a conv net with a spatial softmax.

Observation layout: obs [dO] holds an optional image, flattened channels-first
(C, H, W) row-major, in the contiguous slice ``image_slice``; every other entry is
the low-dimensional part (joint angles, velocities, ...), kept in its original order.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

KINDS = ("mlp", "cnn")


@dataclass(frozen=True)
class PolicyArchitecture:
    """Plain description of the mean network; round-trips through a dict / JSON string.

    kind: "mlp" (all of obs -> hidden layers -> dU) or "cnn" (image -> conv layers ->
    spatial softmax feature points, concatenated with the low-dimensional part ->
    hidden layers -> dU). image_shape: (C, H, W), only for "cnn"; image_slice:
    (start, stop) of the flattened image inside obs; image_range: the pixel value that
    maps to 1 (images are scaled to [0, 1], not normalised per pixel); pose_dim ("cnn"
    only, 0: none): outputs of a linear pose head on the feature points, which the
    S-step trains to predict state quantities such as target and end-effector
    positions (the pose regression of Levine et al., JMLR 2016, Sec. 4.3).
    """

    kind: str
    dO: int
    dU: int
    hidden_sizes: tuple[int, ...] = (40, 40)
    conv_channels: tuple[int, ...] = (16, 16)
    conv_kernels: tuple[int, ...] = (5, 5)
    conv_strides: tuple[int, ...] = (2, 1)
    image_shape: tuple[int, int, int] | None = None
    image_slice: tuple[int, int] | None = None
    image_range: float = 255.0
    learn_temperature: bool = True
    pose_dim: int = 0

    def __post_init__(self) -> None:
        for name in ("hidden_sizes", "conv_channels", "conv_kernels", "conv_strides"):
            object.__setattr__(self, name, tuple(int(v) for v in getattr(self, name)))
        if self.image_shape is not None:
            object.__setattr__(self, "image_shape", tuple(int(v) for v in self.image_shape))
        if self.image_slice is not None:
            object.__setattr__(self, "image_slice", tuple(int(v) for v in self.image_slice))
        if self.kind not in KINDS:
            raise ValueError(f"kind: expected one of {KINDS}, got {self.kind!r}")
        if self.dO < 1 or self.dU < 1:
            raise ValueError(f"dO, dU: expected positive sizes, got dO={self.dO}, dU={self.dU}")
        if any(h < 1 for h in self.hidden_sizes):
            raise ValueError(f"hidden_sizes: expected positive sizes, got {self.hidden_sizes}")
        if not self.image_range > 0:
            raise ValueError(f"image_range: expected > 0, got {self.image_range}")
        if self.pose_dim < 0 or (self.pose_dim > 0 and self.kind != "cnn"):
            raise ValueError(f"pose_dim: expected 0, or a positive size for kind 'cnn', got {self.pose_dim} for kind {self.kind!r}")
        if self.kind == "cnn":
            self._check_image()

    def _check_image(self) -> None:
        if self.image_shape is None or len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape: expected (C, H, W) of positive sizes for kind 'cnn', got {self.image_shape}")
        size = self.image_shape[0] * self.image_shape[1] * self.image_shape[2]
        sl = self.image_slice
        if sl is None or len(sl) != 2 or not (0 <= sl[0] and sl[1] - sl[0] == size and sl[1] <= self.dO):
            raise ValueError(
                f"image_slice: expected (start, start + {size}) within [0, {self.dO}] for image_shape "
                f"{self.image_shape}, got {sl}"
            )
        n_conv = len(self.conv_channels)
        if n_conv < 1 or len(self.conv_kernels) != n_conv or len(self.conv_strides) != n_conv:
            raise ValueError(
                f"conv_channels, conv_kernels, conv_strides: expected equal non-zero lengths, got "
                f"{self.conv_channels}, {self.conv_kernels}, {self.conv_strides}"
            )
        if min(self.conv_channels + self.conv_kernels + self.conv_strides) < 1:
            raise ValueError(
                f"conv_channels, conv_kernels, conv_strides: expected positive values, got "
                f"{self.conv_channels}, {self.conv_kernels}, {self.conv_strides}"
            )

    @property
    def lowdim_index(self) -> list[int]:
        """Indices of obs outside the image slice (all of obs for an MLP)."""
        if self.kind == "mlp" or self.image_slice is None:
            return list(range(self.dO))
        start, stop = self.image_slice
        return list(range(start)) + list(range(stop, self.dO))

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for key, val in out.items():
            if isinstance(val, tuple):
                out[key] = list(val)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PolicyArchitecture:
        known = set(cls.__dataclass_fields__)
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"architecture: unknown fields {sorted(unknown)}; expected a subset of {sorted(known)}")
        return cls(**data)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PolicyArchitecture:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"architecture: expected a JSON object, got invalid JSON ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"architecture: expected a JSON object, got {type(data).__name__}")
        return cls.from_dict(data)


def mlp(sizes: list[int]) -> nn.Sequential:
    """Fully connected layers sizes[0] -> ... -> sizes[-1], ReLU between, linear output."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class SpatialSoftmax(nn.Module):
    """Feature maps [B, C, H, W] -> expected feature points [B, 2C], (x_c, y_c) per channel.

    s_c(i, j) = softmax over pixels of a_c(i, j) / alpha; x is the column coordinate,
    y the row coordinate, both spread evenly over [-1, 1]. alpha is learned in log
    space (so it stays positive) when ``learn_temperature``.
    """

    def __init__(self, height: int, width: int, temperature: float = 1.0, learn_temperature: bool = True) -> None:
        super().__init__()
        log_alpha = torch.tensor(float(temperature)).log()
        if learn_temperature:
            self.log_alpha = nn.Parameter(log_alpha)
        else:
            self.register_buffer("log_alpha", log_alpha)
        self.register_buffer("pos_x", torch.linspace(-1.0, 1.0, width))
        self.register_buffer("pos_y", torch.linspace(-1.0, 1.0, height))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        B, C, H, W = features.shape
        logits = features.reshape(B, C, H * W) / self.log_alpha.exp().to(features.dtype)
        soft = torch.softmax(logits, dim=-1).reshape(B, C, H, W)
        x = (soft.sum(dim=2) * self.pos_x.to(features.dtype)).sum(dim=-1)
        y = (soft.sum(dim=3) * self.pos_y.to(features.dtype)).sum(dim=-1)
        return torch.stack((x, y), dim=-1).reshape(B, 2 * C)


class MLPNetwork(nn.Module):
    """Normalised obs [B, dO] -> mean action [B, dU]."""

    def __init__(self, arch: PolicyArchitecture) -> None:
        super().__init__()
        self.layers = mlp([arch.dO, *arch.hidden_sizes, arch.dU])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.layers(obs)


class SpatialSoftmaxNetwork(nn.Module):
    """Normalised obs [B, dO] -> mean action [B, dU] through conv + spatial softmax + FC."""

    def __init__(self, arch: PolicyArchitecture) -> None:
        super().__init__()
        C, H, W = arch.image_shape
        convs: list[nn.Module] = []
        channels_in = C
        for channels, kernel, stride in zip(arch.conv_channels, arch.conv_kernels, arch.conv_strides):
            convs += [nn.Conv2d(channels_in, channels, kernel, stride=stride, padding=kernel // 2), nn.ReLU()]
            channels_in = channels
        # The last conv layer feeds the softmax without a ReLU: a channel the ReLU zeroes at every pixel
        # gives a uniform softmax and no gradient, so it never comes back (measured on vision-reacher:
        # 9 of 16 channels dead after 3000 pose-regression steps; none without the ReLU).
        self.convs = nn.Sequential(*convs[:-1])
        with torch.no_grad():
            _, _, h, w = self.convs(torch.zeros(1, C, H, W)).shape
        self.spatial_softmax = SpatialSoftmax(h, w, learn_temperature=arch.learn_temperature)
        self.image_shape = (C, H, W)
        self.image_start, self.image_stop = arch.image_slice
        self.register_buffer("lowdim_index", torch.tensor(arch.lowdim_index, dtype=torch.long))
        self.head = mlp([2 * channels_in + len(arch.lowdim_index), *arch.hidden_sizes, arch.dU])
        self.pose_head = nn.Linear(2 * channels_in, arch.pose_dim) if arch.pose_dim else None

    def feature_points(self, obs: torch.Tensor) -> torch.Tensor:
        """Normalised obs [B, dO] -> expected feature points [B, 2C] of the image."""
        image = obs[:, self.image_start : self.image_stop].reshape(-1, *self.image_shape)
        return self.spatial_softmax(self.convs(image))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self._head(self.feature_points(obs), obs)

    def forward_with_pose(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised obs [B, dO] -> (mean action [B, dU], pose head output [B, pose_dim]), one conv pass."""
        points = self.feature_points(obs)
        return self._head(points, obs), self.pose_head(points)

    def _head(self, points: torch.Tensor, obs: torch.Tensor) -> torch.Tensor:
        return self.head(torch.cat((points, obs.index_select(1, self.lowdim_index)), dim=1))


def build_network(arch: PolicyArchitecture) -> nn.Module:
    return MLPNetwork(arch) if arch.kind == "mlp" else SpatialSoftmaxNetwork(arch)
