"""The papers' planar locomotion tasks (swimmer, walker) for known-dynamics GPS.

Cost (variational GPS Sec. 5, constrained GPS Sec. 4):
    l(x, u) = w_u |u|^2 + w_v (v_x - v_x*)^2 + w_h (p_y - p_y*)^2,
with p_y the root's height (the walker's torso; the swimmer has no height term) and v_x the
forward velocity of the walker's root, of the swimmer's centre of mass. The state is MuJoCo's
x = [qpos; qvel] (see ``gps_ros.sim.known_model``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np

from gps_ros.core.costs.base import CostExpansion
from gps_ros.core.costs.config_checks import check_scalar
from gps_ros.core.samples import SampleBatch
from gps_ros.core.validation import check_array
from gps_ros.sim.known_model import MujocoDynamicsModel

MODELS_DIR = Path(__file__).resolve().parent / "models"


def _check_index(name: str, value: int | None, dX: int | None = None, optional: bool = False) -> int | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0 or (dX is not None and value >= dX):
        bound = f"in [0, {dX})" if dX is not None else ">= 0"
        raise ValueError(f"{name}: expected a state index {bound}{' or None' if optional else ''}, got {value!r}")
    return int(value)


class CentreOfMassVelocity:
    """The forward (x) velocity of the centre of mass of ``model``'s bodies below ``body``
    (default 1: the whole floating mechanism), a function of the state x = [qpos; qvel]:
    v(x) = J(q)[0] · qvel with J MuJoCo's subtree centre-of-mass Jacobian (mj_jacSubtreeCom).

    Unlike a point on the body, the centre of mass does not sway within a stroke of an
    undulating gait, so a cost on it rewards swimming, not keeping the head still. The model
    must have hinge and slide joints only (nq == nv); one MjData is kept, so an instance is not
    for use from several threads at once.
    """

    def __init__(self, model: mujoco.MjModel, body: int = 1) -> None:
        if not isinstance(model, mujoco.MjModel):
            raise ValueError(f"model: expected a mujoco.MjModel, got {type(model).__name__}")
        if model.nq != model.nv:
            raise ValueError(f"model: expected hinge and slide joints only (nq == nv), got nq={model.nq}, nv={model.nv}")
        if isinstance(body, bool) or not isinstance(body, (int, np.integer)) or not 1 <= body < model.nbody:
            raise ValueError(f"body: expected a body index in [1, {model.nbody}), got {body!r}")
        self.model, self.body = model, int(body)
        self.dX = model.nq + model.nv
        self._data = mujoco.MjData(model)
        self._jac = np.zeros((3, model.nv))

    def _jacobian_row(self, qpos: np.ndarray) -> np.ndarray:
        self._data.qpos[:] = qpos
        mujoco.mj_kinematics(self.model, self._data)
        mujoco.mj_comPos(self.model, self._data)
        mujoco.mj_jacSubtreeCom(self.model, self._data, self._jac, self.body)
        return self._jac[0].copy()

    def _flat_states(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """X [..., dX] checked, and its states as rows [n, dX]."""
        X = check_array("X", X, (None,) * (np.ndim(X) - 1) + (self.dX,))
        return X, X.reshape(-1, self.dX)

    def value(self, X: np.ndarray) -> np.ndarray:
        """X [..., dX] -> v [...]."""
        X, flat = self._flat_states(X)
        nq = self.model.nq
        return np.array([self._jacobian_row(x[:nq]) @ x[nq:] for x in flat]).reshape(X.shape[:-1])

    def value_and_gradient(self, X: np.ndarray, eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
        """X [..., dX] -> v [...] and dv/dx [..., dX]: the qvel part is J's row, the qpos part
        d(J(q)[0] · qvel)/dq by central differences of the Jacobian."""
        X, flat = self._flat_states(X)
        nq = self.model.nq
        v, grad = np.empty(len(flat)), np.empty_like(flat)
        steps = eps * np.eye(nq)
        for i, x in enumerate(flat):
            q, qvel = x[:nq], x[nq:]
            row = self._jacobian_row(q)
            v[i] = row @ qvel
            grad[i, nq:] = row
            grad[i, :nq] = [(self._jacobian_row(q + h) - self._jacobian_row(q - h)) @ qvel / (2 * eps) for h in steps]
        return v.reshape(X.shape[:-1]), grad.reshape(X.shape)


class _StateEntry:
    """x[index] as a feature: value and (constant) gradient."""

    def __init__(self, index: int) -> None:
        self.index = index

    def value(self, X: np.ndarray) -> np.ndarray:
        return X[..., self.index]

    def value_and_gradient(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        grad = np.zeros_like(X)
        grad[..., self.index] = 1.0
        return X[..., self.index], grad


@dataclass(frozen=True, eq=False, kw_only=True)
class LocomotionCost:
    """``l = w_u |u|^2 + w_v (v_x - target_velocity)^2 + w_h (x[height_index] - target_height)^2``
    (no height term when height_index is None), with v_x = x[velocity_index], or the centre of
    mass's forward velocity when ``com_velocity`` is given (then velocity_index is None).

    The expansion is exact for state entries: lu = 2 w_u u, luu = 2 w_u I, lux = 0, lx / lxx
    nonzero only at the two indices. With com_velocity, lx = 2 w_v (v_x - v*) ∇v_x and
    lxx = 2 w_v ∇v_x ∇v_xᵀ (Gauss-Newton: the term in v_x's own curvature is left out, which
    keeps lxx positive semi-definite for DDP).
    """

    w_u: float
    velocity_index: int | None = None
    target_velocity: float
    w_v: float = 1.0
    height_index: int | None = None
    target_height: float = 0.0
    w_h: float = 1.0
    com_velocity: CentreOfMassVelocity | None = None

    def __post_init__(self) -> None:
        for name in ("w_u", "w_v", "w_h"):
            object.__setattr__(self, name, check_scalar(name, getattr(self, name), minimum=0.0))
        for name in ("target_velocity", "target_height"):
            object.__setattr__(self, name, check_scalar(name, getattr(self, name)))
        if self.com_velocity is None:
            object.__setattr__(self, "velocity_index", _check_index("velocity_index", self.velocity_index))
        elif not isinstance(self.com_velocity, CentreOfMassVelocity) or self.velocity_index is not None:
            raise ValueError(f"com_velocity: expected a CentreOfMassVelocity with velocity_index None, got "
                             f"{type(self.com_velocity).__name__} with velocity_index {self.velocity_index!r}")
        object.__setattr__(self, "height_index", _check_index("height_index", self.height_index, optional=True))

    def value(self, samples: SampleBatch) -> np.ndarray:
        """l [N, T] without the derivatives (for line searches: the centre of mass's are dear)."""
        l = self.w_u * np.sum(samples.U**2, axis=-1)
        for feature, target, weight in self._terms(samples.dX):
            l = l + weight * (feature.value(samples.X) - target) ** 2
        return l

    def expand(self, samples: SampleBatch) -> CostExpansion:
        """Expansion ``[N, T, ...]`` at the samples' states and actions."""
        N, T, dX, dU = samples.N, samples.T, samples.dX, samples.dU
        out = CostExpansion.zeros(N, T, dX, dU)
        l = self.w_u * np.sum(samples.U**2, axis=-1)
        for feature, target, weight in self._terms(dX):
            value, grad = feature.value_and_gradient(samples.X)
            err = value - target
            l = l + weight * err**2
            out.lx[:] += 2.0 * weight * err[..., None] * grad
            out.lxx[:] += 2.0 * weight * grad[..., :, None] * grad[..., None, :]
        luu = np.broadcast_to(2.0 * self.w_u * np.eye(dU), (N, T, dU, dU)).copy()
        return CostExpansion(l, out.lx, 2.0 * self.w_u * samples.U, out.lxx, luu, out.lux)

    def _terms(self, dX: int) -> list[tuple[CentreOfMassVelocity | _StateEntry, float, float]]:
        """(feature, target, weight) of the state terms, after checking they fit a dX-sized state."""
        self.check_state_size(dX, "")
        velocity = self.com_velocity if self.com_velocity is not None else _StateEntry(self.velocity_index)
        terms = [(velocity, self.target_velocity, self.w_v)]
        if self.height_index is not None:
            terms.append((_StateEntry(self.height_index), self.target_height, self.w_h))
        return terms

    def check_state_size(self, dX: int, prefix: str) -> None:
        """Raises ValueError naming ``prefix`` + the field when the cost does not fit a dX-sized state."""
        if self.com_velocity is None:
            _check_index(f"{prefix}velocity_index", self.velocity_index, dX)
        elif self.com_velocity.dX != dX:
            raise ValueError(f"{prefix}com_velocity: expected a model with state size {dX}, got {self.com_velocity.dX}")
        _check_index(f"{prefix}height_index", self.height_index, dX, optional=True)


@dataclass(frozen=True, eq=False, kw_only=True)
class LocomotionTask:
    """A planar locomotion task on a MuJoCo model.

    model: hinge/slide joints only; dt: control period, a whole multiple of
    model.opt.timestep; T: horizon (steps); cost: the task cost; x_index /
    angle_index / height_index: qpos indices of the root's forward position, pitch/heading
    angle and height (None: no height); rest_qpos: [nq] the rest pose (default: model.qpos0);
    init_qpos_std / init_qvel_std: std of the Gaussian perturbations of the actuated joint
    angles / of all velocities in ``initial_states``; fall_height / fall_angle: ``fell``
    thresholds on root height (below) and |root angle| (above), None for no test;
    walk_speed: the average forward speed (m/s) a rollout must keep, besides not falling, to
    count as ``walked`` (a policy that stands still at the target height does not fall);
    unobserved_qpos: qpos indices hidden from the policy (``policy_inputs``): root coordinates that
    neither the dynamics nor the cost depend on, so that a gait learnt at one place works at any other;
    fd_eps: the finite-difference step of the dynamics' Jacobians (MujocoDynamicsModel).
    Derived: dynamics (a MujocoDynamicsModel), dX, dU, nq, state_slices.
    """

    name: str
    model: mujoco.MjModel
    dt: float
    T: int
    cost: LocomotionCost
    x_index: int = 0
    angle_index: int = 2
    height_index: int | None = None
    rest_qpos: np.ndarray | None = None
    init_qpos_std: float = 0.0
    init_qvel_std: float = 0.0
    fall_height: float | None = None
    fall_angle: float | None = None
    walk_speed: float = 0.0
    unobserved_qpos: tuple[int, ...] = ()
    fd_eps: float = 1e-6
    dynamics: MujocoDynamicsModel = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.model, mujoco.MjModel):
            raise ValueError(f"model: expected a mujoco.MjModel, got {type(self.model).__name__}")
        timestep = float(self.model.opt.timestep)
        dt = check_scalar("dt", self.dt, minimum=0.0, strict=True)
        substeps = round(dt / timestep)
        if substeps < 1 or abs(substeps * timestep - dt) > 1e-9 * max(1.0, dt):
            raise ValueError(f"dt: expected a positive multiple of the model timestep {timestep}, got {self.dt!r}")
        if isinstance(self.T, bool) or not isinstance(self.T, (int, np.integer)) or self.T < 1:
            raise ValueError(f"T: expected an integer >= 1, got {self.T!r}")
        if not isinstance(self.cost, LocomotionCost):
            raise ValueError(f"cost: expected a LocomotionCost, got {type(self.cost).__name__}")
        nq = self.model.nq
        for name in ("x_index", "angle_index"):
            _check_index(name, getattr(self, name), nq)
        _check_index("height_index", self.height_index, nq, optional=True)
        for i in self.unobserved_qpos:
            _check_index("unobserved_qpos", i, nq)
        if len(set(self.unobserved_qpos)) != len(self.unobserved_qpos):
            raise ValueError(f"unobserved_qpos: expected distinct qpos indices, got {self.unobserved_qpos!r}")
        object.__setattr__(self, "unobserved_qpos", tuple(int(i) for i in self.unobserved_qpos))
        dynamics = MujocoDynamicsModel(self.model, control_substeps=substeps, fd_eps=self.fd_eps)
        self.cost.check_state_size(dynamics.dX, "cost.")
        rest = self.model.qpos0.copy() if self.rest_qpos is None else check_array("rest_qpos", self.rest_qpos, (nq,))
        object.__setattr__(self, "rest_qpos", rest)
        for name in ("init_qpos_std", "init_qvel_std"):
            object.__setattr__(self, name, check_scalar(name, getattr(self, name), minimum=0.0))
        object.__setattr__(self, "walk_speed", check_scalar("walk_speed", self.walk_speed, minimum=0.0))
        for name in ("fall_height", "fall_angle"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_scalar(name, getattr(self, name), minimum=0.0))
        object.__setattr__(self, "T", int(self.T))
        object.__setattr__(self, "dt", dt)
        object.__setattr__(self, "dynamics", dynamics)

    @property
    def dX(self) -> int:
        return self.dynamics.dX

    @property
    def dU(self) -> int:
        return self.dynamics.dU

    @property
    def nq(self) -> int:
        return self.model.nq

    @property
    def state_slices(self) -> dict[str, slice]:
        return {"qpos": slice(0, self.nq), "qvel": slice(self.nq, self.dX)}

    @property
    def policy_inputs(self) -> list[int]:
        """The state indices a policy sees: all but ``unobserved_qpos``."""
        return [i for i in range(self.dX) if i not in self.unobserved_qpos]

    @property
    def rest_state(self) -> np.ndarray:
        """[dX]: the rest pose at zero velocity."""
        return np.concatenate([self.rest_qpos, np.zeros(self.model.nv)])

    def initial_states(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """[n, dX]: the rest state with Gaussian perturbations of the actuated joints' angles
        (std init_qpos_std) and of all velocities (std init_qvel_std)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n: expected an integer >= 1, got {n!r}")
        if not isinstance(rng, np.random.Generator):
            raise ValueError(f"rng: expected a numpy Generator, got {type(rng).__name__}")
        X0 = np.tile(self.rest_state, (int(n), 1))
        actuated = self.model.jnt_qposadr[self.model.actuator_trnid[:, 0]]
        X0[:, actuated] += self.init_qpos_std * rng.standard_normal((n, len(actuated)))
        X0[:, self.nq:] += self.init_qvel_std * rng.standard_normal((n, self.model.nv))
        return X0

    def rollout(self, x0: np.ndarray, U: np.ndarray) -> np.ndarray:
        """X: [T, dX] from x0: [dX] under the open-loop actions U: [T, dU] (X[0] = x0)."""
        x = check_array("x0", x0, (self.dX,))
        U = check_array("U", U, (None, self.dU))
        X = np.empty((U.shape[0], self.dX))
        for t in range(U.shape[0]):
            X[t] = x
            x = self.dynamics.step(x, U[t])
        return X

    def forward_distance(self, X: np.ndarray) -> np.ndarray:
        """X: [T, dX] or [N, T, dX] -> root x displacement from the first to the last step
        (a scalar array, or [N])."""
        X = self._check_trajectories(X)
        return X[..., -1, self.x_index] - X[..., 0, self.x_index]

    def fallen(self, X: np.ndarray) -> np.ndarray:
        """X: [..., dX] -> per state, whether the root height is below fall_height or |root angle|
        above fall_angle (bool [...])."""
        X = check_array("X", X, (*([None] * (np.ndim(X) - 1)), self.dX))
        down = np.zeros(X.shape[:-1], dtype=bool)
        if self.fall_height is not None and self.height_index is not None:
            down |= X[..., self.height_index] < self.fall_height
        if self.fall_angle is not None:
            down |= np.abs(X[..., self.angle_index]) > self.fall_angle
        return down

    def fell(self, X: np.ndarray) -> np.ndarray:
        """X: [T, dX] or [N, T, dX] -> whether the walker was fallen (fallen) at any step (bool
        scalar array, or [N])."""
        return np.asarray(np.any(self.fallen(self._check_trajectories(X)), axis=-1))

    def walked(self, X: np.ndarray) -> np.ndarray:
        """X: [T, dX] or [N, T, dX] -> whether the rollout did not fall and its root kept an average
        forward speed of at least walk_speed over the T - 1 steps (bool scalar array, or [N])."""
        X = self._check_trajectories(X)
        duration = (X.shape[-2] - 1) * self.dt
        return ~self.fell(X) & (self.forward_distance(X) >= self.walk_speed * duration)

    def _check_trajectories(self, X: np.ndarray) -> np.ndarray:
        ndim = np.ndim(X)
        if ndim not in (2, 3):
            raise ValueError(f"X: expected shape [T, {self.dX}] or [N, T, {self.dX}], got {list(np.shape(X))}")
        return check_array("X", X, (None,) * (ndim - 1) + (self.dX,))


def swimmer_task() -> LocomotionTask:
    """The 3-link swimmer (models/swimmer.xml; qpos = [x, y, heading, joint1, joint2]).

    From the papers: 3 links, 10-D state, cost without the height term, w_u = 1e-5 (the
    text prints "10^5" as "a lower torque penalty" than the walker's, i.e. a lost minus
    sign). Ours (the papers do not state them): dt = 0.05 s (5 substeps of 10 ms),
    T = 200 (10 s), v_x* = 0.2 m/s (what a sinusoidal gait at the torque limit reaches),
    w_v = 1, initial joint angles perturbed by 0.1 rad and velocities by 0.05, the policy sees
    the state without the root's x and y (a policy on all 10 measured: it learnt to stay put).
    v_x is the centre of mass's velocity, not the head's: the head sways back and forth within
    each stroke, and with its velocity in the cost DDP's optimum (seed 0) was a gait that keeps
    the head still by switching torques at every 50 ms step, which a smooth policy cannot
    follow (blurring its actions by one step raised its cost from 3.3 to 35) and which swam
    0.84 m in 10 s against 1.8 m for a plain sinusoid.
    """
    model = mujoco.MjModel.from_xml_path(str(MODELS_DIR / "swimmer.xml"))
    cost = LocomotionCost(w_u=1e-5, com_velocity=CentreOfMassVelocity(model), target_velocity=0.2)
    return LocomotionTask(
        name="swimmer", model=model, dt=0.05, T=200, cost=cost,
        x_index=0, angle_index=2, init_qpos_std=0.1, init_qvel_std=0.05, unobserved_qpos=(0, 1),
    )


def walker_task() -> LocomotionTask:
    """The 7-link planar walker (models/walker.xml; qpos = [x, z, pitch, right hip/knee/ankle,
    left hip/knee/ankle], z the torso centre's height).

    From the papers: 7 links, 18-D state, w_u = 1e-4 (printed "10^4"), unit weights on
    the velocity and height terms. Ours: dt = 0.01 s (2 substeps of 5 ms), T = 300 (3 s),
    v_x* = 0.8 m/s and p_y* = 1.23 m (the hand-written gait of gps_ros.sim.gait keeps 1.22-1.23 m
    at 0.48-0.73 m/s from perturbed starts), initial velocities perturbed by 0.05 (joint angles
    left at the standing pose so the feet start on the ground), fallen when the torso centre
    drops below 0.8 m or leans more than 1 rad, walked when it also kept 0.4 m/s (half of v_x*)
    on average, the policy sees the state without the root's x. Jacobians by centred finite
    differences of 0.05, a secant on the scale of q's spread, rather than derivatives: across the
    stiff foot contacts a step of 1e-6 linearises a contact's onset (DDP feedback gains up to 1.7e5;
    at β = 1e4, q marginals with joint std of 0.4 rad and 10 rad/s ten steps in, where noisy
    rollouts of the demonstration have 0.04 rad; dev seed 10). Along the gait from one dev state,
    under the gait controller's own feedback, a 0.01-sized perturbation of the start grows 14-640
    fold over 3 s in the simulator; propagated through the linearised closed loop it grows to 1e21
    (step 1e-3), 1e6 (1e-2) and 1e3 (0.05), the last alone on the simulator's scale (.wk diagnostic,
    issue #7's notes), so only there can q's marginals carry a walking policy's feedback.
    """
    model = mujoco.MjModel.from_xml_path(str(MODELS_DIR / "walker.xml"))
    cost = LocomotionCost(w_u=1e-4, velocity_index=model.nq + 0, target_velocity=0.8, height_index=1, target_height=1.23)
    return LocomotionTask(
        name="walker", model=model, dt=0.01, T=300, cost=cost,
        x_index=0, angle_index=2, height_index=1, init_qvel_std=0.05, fall_height=0.8, fall_angle=1.0, walk_speed=0.4,
        unobserved_qpos=(0,), fd_eps=0.05,
    )
