"""Speed figures of the global policy on the available device.

    python -m gps_ros.policies.timing [--quick]

prints a JSON dict: single-observation ``act`` latency (median and p99, microseconds)
for the MLP and the 64x64 spatial-softmax CNN, and S-step throughput (samples/s).
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from gps_ros.policies.gaussian_policy import GaussianPolicy, default_device
from gps_ros.policies.networks import PolicyArchitecture
from gps_ros.policies.sstep import SStep, SStepConfig

JOINTS = 7


def _architectures() -> dict[str, PolicyArchitecture]:
    lowdim = 2 * JOINTS
    image = 3 * 64 * 64
    return {
        "mlp": PolicyArchitecture("mlp", dO=lowdim + 6, dU=JOINTS),
        "cnn64": PolicyArchitecture(
            "cnn", dO=image + lowdim, dU=JOINTS, image_shape=(3, 64, 64), image_slice=(0, image),
            conv_channels=(32, 32, 32), conv_kernels=(7, 5, 5), conv_strides=(2, 1, 1),
        ),
    }


def _act_latency_us(policy: GaussianPolicy, repeats: int, rng: np.random.Generator) -> dict[str, float]:
    obs = rng.uniform(0, 1, policy.dO)
    noise = rng.standard_normal(policy.dU)
    for _ in range(min(20, repeats)):
        policy.act(None, obs, 0, noise)
    times = np.empty(repeats)
    for i in range(repeats):
        t0 = time.perf_counter()
        policy.act(None, obs, 0, noise)
        times[i] = time.perf_counter() - t0
    return {"median_us": float(np.median(times) * 1e6), "p99_us": float(np.quantile(times, 0.99) * 1e6)}


def _sstep_samples_per_s(policy: GaussianPolicy, iterations: int, batch_size: int, rng: np.random.Generator) -> float:
    N, T = 4, 25
    obs = rng.uniform(0, 1, (N, T, policy.dO))
    target = rng.standard_normal((N, T, policy.dU))
    precision = np.broadcast_to(np.eye(policy.dU), (N, T, policy.dU, policy.dU))
    sstep = SStep(policy, SStepConfig(iterations=iterations, batch_size=batch_size))
    sstep.update(obs, target, precision)  # warm-up: allocator, kernels
    t0 = time.perf_counter()
    sstep.update(obs, target, precision)
    return iterations * batch_size / (time.perf_counter() - t0)


def measure_timings(
    device: torch.device | str | None = None, quick: bool = False, seed: int = 0, threads: int | None = None
) -> dict:
    """Latency of one ``act`` call and S-step throughput per architecture on ``device`` (default: GPU if any),
    with ``threads`` torch CPU threads (default: torch's own choice)."""
    device = torch.device(device) if device is not None else default_device()
    if threads is not None:
        torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    out: dict = {"device": str(device), "torch": torch.__version__, "threads": torch.get_num_threads()}
    for name, arch in _architectures().items():
        policy = GaussianPolicy(arch, device=device, seed=seed)
        repeats = 50 if quick else 1000
        iterations = 5 if quick else (200 if name == "mlp" else 40)
        out[name] = {
            "act": _act_latency_us(policy, repeats, rng),
            "sstep_batch": 64,
            "sstep_samples_per_s": _sstep_samples_per_s(policy, iterations, 64, rng),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smoke-sized run")
    parser.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = parser.parse_args()
    print(json.dumps(measure_timings(args.device, args.quick, threads=args.threads), indent=2))


if __name__ == "__main__":
    main()
