"""GPS algorithms: local-policy optimisation (traj_opt) and the guided policy search variants built on it.

Algorithms never call a simulator: the caller samples from ``algorithm.local_policies``
and hands the samples to ``algorithm.iteration``.
"""
