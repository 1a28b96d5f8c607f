"""Trajectory costs with analytic first and second derivatives, batched over samples and time."""
