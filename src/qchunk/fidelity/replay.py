"""Replay a recorded update of the authors' code in qchunk and measure how far the two are apart.

Each replayer (one per authors' agent module, :data:`REPLAYERS`) rebuilds the qchunk agent from the fixture's
config, transplants the parameters (:mod:`~qchunk.fidelity.transplant`), turns the recorded draws into the
agent's draws structure, and compares what :func:`compare_update` computes with what the authors' code did.
The error of a quantity is its largest relative difference, ``max |got - want| / max |want|`` over the
array (for a tree: over its leaves, each against its own scale), so a tolerance reads as float32 rounding
(``TOLERANCE``).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from qchunk.agents.common import apply_gradients, check_batch
from qchunk.errors import QchunkError
from qchunk.fidelity.fixture import Fixture
from qchunk.fidelity.transplant import leaf_paths

TOLERANCE: dict[str, float] = {
    "loss": 1e-4,
    "metric": 1e-4,
    "gradient": 1e-5,
    "parameters after the update": 1e-4,
    "actions": 1e-4,
}
"""Largest relative difference allowed per kind of quantity (float32 rounding of two implementations that
order their sums differently; measured values are in ``docs/fidelity.md``)."""

REPLAYERS: dict[str, str] = {
    "qam:agents.qam": "qchunk.fidelity.qam_replay:replay_qam",
    "qam:agents.fedit": "qchunk.fidelity.qam_replay:replay_fedit",
    "qc:agents.acfql": "qchunk.fidelity.flow_replay:replay_acfql",
    "qam:agents.fql": "qchunk.fidelity.flow_replay:replay_qam_fql",
    "qc:agents.acrlpd": "qchunk.fidelity.rlpd_replay:replay_rlpd",
    "qam:agents.rlpd": "qchunk.fidelity.rlpd_replay:replay_rlpd",
    "qam:agents.dsrl": "qchunk.fidelity.dsrl_replay:replay_dsrl",
    "qam:agents.rebrac": "qchunk.fidelity.brac_replay:replay_rebrac",
    "qam:agents.fbrac": "qchunk.fidelity.brac_replay:replay_fbrac",
    "qam:agents.dcgql": "qchunk.fidelity.diffusion_replay:replay_diffusion",
    "qam:agents.ifql": "qchunk.fidelity.ifql_replay:replay_ifql",
    "qam:agents.fawac": "qchunk.fidelity.fawac_replay:replay_fawac",
}
"""``repo:module`` of an authors' agent -> ``module:function`` of its replayer. An agent module ``agents.NAME`` of
the QAM repository not listed here is replayed by ``qchunk.fidelity.NAME_replay:replay_NAME`` when that module
exists (:func:`replayer_of`), so a new method adds no line here."""


def replayer_of(repo: str, module: str) -> str | None:
    """``module:function`` of the replayer of the authors' ``repo`` / ``module``: :data:`REPLAYERS`'s entry, or
    by the naming convention above; None when there is none."""
    key = f"{repo}:{module}"
    if key in REPLAYERS:
        return REPLAYERS[key]
    name = module.rsplit(".", 1)[-1]
    if repo != "qam" or not module.startswith("agents.") or importlib.util.find_spec(
            f"qchunk.fidelity.{name}_replay") is None:
        return None
    return f"qchunk.fidelity.{name}_replay:replay_{name}"


def qam_repo_fields(authors: dict[str, Any], horizon: int) -> dict[str, Any]:
    """The qchunk config fields every agent of the QAM repository shares, from its ``get_config()`` (with the
    case's overrides): chunking, discount, Polyak rate, learning rate, network sizes and norms, K, rho, T, N, and
    the QAM code's ensemble mean and BC weighting."""
    return dict(horizon=horizon, chunked=bool(authors["action_chunking"]), discount=authors["discount"],
                tau=authors["tau"], lr=authors["lr"], actor_hidden_dims=tuple(authors["actor_hidden_dims"]),
                critic_hidden_dims=tuple(authors["value_hidden_dims"]), actor_layer_norm=authors["actor_layer_norm"],
                critic_layer_norm=authors["value_layer_norm"], num_critics=authors["num_qs"], rho=authors["rho"],
                flow_steps=authors["flow_steps"], num_samples=authors["best_of_n"], q_agg="mean",
                bc_weighting="chunk")


CRITIC_METRICS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "critic/critic_loss": lambda i: i["critic/loss"],
    "critic/q_mean": lambda i: i["critic/q_mean"],
    "critic/q_max": lambda i: i["critic/q_max"],
    "critic/q_min": lambda i: i["critic/q_min"],
}
"""The critic metrics every authors' agent logs, from qchunk's (:func:`~qchunk.agents.common.critic_info`)."""


@dataclass(frozen=True)
class Check:
    """One compared quantity of one fixture."""

    case: str
    """The fixture's case name."""
    kind: str
    """``loss``, ``metric``, ``gradient``, ``parameters after the update`` or ``actions``."""
    name: str
    """Which one (an authors' metric key, a network, ``actions``)."""
    error: float
    """The largest relative difference measured."""

    @property
    def tolerance(self) -> float:
        """The allowed error for this kind (:data:`TOLERANCE`)."""
        return TOLERANCE[self.kind]

    @property
    def ok(self) -> bool:
        """Whether the error is within the tolerance."""
        return bool(np.isfinite(self.error)) and self.error <= self.tolerance


def relative_error(got: Any, want: Any, floor: float = 1e-6) -> float:
    """``max |got - want| / max(max |want|, floor)``; for nested dicts the largest over the leaves (same paths
    required)."""
    if isinstance(want, dict):
        if set(got) != set(want):
            raise QchunkError(f"different entries: {sorted(set(got) ^ set(want))}")
        return max((relative_error(got[k], want[k], floor) for k in want), default=0.0)
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if got.shape != want.shape:
        raise QchunkError(f"shape {got.shape} != {want.shape}")
    if want.size == 0:
        return 0.0
    return float(np.max(np.abs(got - want)) / max(float(np.max(np.abs(want))), floor))


def authors_grad_stats(grads: Any) -> dict[str, float]:
    """The gradient statistics the authors' ``apply_loss_fn`` logs, computed from a gradient tree: ``grad/max``,
    ``grad/min`` and ``grad/norm`` (the L1 norm of the per-leaf L2 norms)."""
    leaves = [np.asarray(x, np.float64) for x in jax.tree_util.tree_leaves(grads)]
    return {"grad/max": max(float(x.max()) for x in leaves), "grad/min": min(float(x.min()) for x in leaves),
            "grad/norm": float(sum(np.linalg.norm(x.ravel()) for x in leaves))}


def as_batch(fixture: Fixture) -> dict[str, jax.Array]:
    """The fixture's batch as qchunk's batch contract (float32)."""
    batch = fixture.batch()
    return {k: jnp.asarray(batch[k], jnp.float32)
            for k in ("observations", "actions", "rewards", "masks", "valid", "next_observations")}


def draw_queue(draws: list[np.ndarray]) -> Callable[[tuple[int, ...]], jax.Array]:
    """A function that hands out ``draws`` in order, each reshaped to the shape asked for (same size required;
    the authors' samplers may add a leading axis of 1). ``take.remaining()`` counts what is left."""
    queue = list(draws)

    def take(shape: tuple[int, ...]) -> jax.Array:
        if not queue:
            raise QchunkError(f"the recording has no draw left for shape {shape}")
        value = queue.pop(0)
        if value.size != int(np.prod(shape)):
            raise QchunkError(f"recorded draw of shape {value.shape} does not fit {shape}")
        return jnp.asarray(value.reshape(shape), jnp.float32)

    def remaining() -> int:
        return len(queue)

    take.remaining = remaining  # type: ignore[attr-defined]
    take.skip = lambda n=1: [queue.pop(0) for _ in range(n)]  # type: ignore[attr-defined]
    return take


def event_last(take: Callable[[tuple[int, ...]], jax.Array], shape: tuple[int, ...]) -> jax.Array:
    """The next recorded draw of a tanh-Gaussian sample of ``shape = (..., P)``: TFP's ``MultivariateNormalDiag``
    (the QAM repo's ``TanhNormal``) draws its standard normals event axis first, ``(P, ...)``."""
    return jnp.moveaxis(take((shape[-1], *shape[:-1])), 0, -1)


@dataclass(frozen=True)
class Replay:
    """What a replayer hands to :func:`compare_update`."""

    agent: Any
    """The qchunk agent with the transplanted parameters and targets."""
    draws: Any
    """The update's draws in the agent's structure (``agent.update_draws``'s)."""
    act_noise: Any
    """The draws of ``sample_actions`` in the agent's structure (``agent.policy_noise``'s)."""
    params: Callable[[dict[str, Any]], dict[str, Any]]
    """Authors' full parameter tree (``modules_*``) -> qchunk's ``params`` (also maps gradients)."""
    targets: Callable[[dict[str, Any]], dict[str, Any]]
    """Authors' full parameter tree -> qchunk's ``target_params``."""
    metrics: dict[str, Callable[[dict[str, Any]], Any]]
    """Authors' ``total_loss`` metric key -> its value from qchunk's metrics."""
    unmapped: tuple[str, ...] = ()
    """Authors' modules with no qchunk counterpart (their gradients must be zero: unused by the loss)."""


def with_adam_state(agent: Any, mu: Any, nu: Any, count: Any) -> Any:
    """``agent`` with the moments and step count of the Adam inside its optimizer state replaced (the authors'
    state after the fixture's warm-up updates, mapped like the parameters)."""
    def replace(node: Any) -> Any:
        if isinstance(node, optax.ScaleByAdamState):
            cast = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), (mu, nu))
            return optax.ScaleByAdamState(count=jnp.asarray(count, node.count.dtype), mu=cast[0], nu=cast[1])
        return node

    state = jax.tree_util.tree_map(replace, agent.opt_state, is_leaf=lambda x: isinstance(x, optax.ScaleByAdamState))
    return agent.replace(opt_state=state)


def compare_update(fixture: Fixture, rep: Replay) -> list[Check]:
    """Run the replay's loss, gradient, update and acting and compare each with the fixture (from the fixture's
    Adam state, when it has one)."""
    agent, case = rep.agent, fixture.name
    if "opt/count" in fixture.arrays:
        agent = with_adam_state(agent, rep.params(fixture.tree("opt/mu")), rep.params(fixture.tree("opt/nu")),
                                fixture.arrays["opt/count"])
    batch = check_batch(agent, as_batch(fixture))
    loss_fn = type(agent).loss_from_draws

    # eagerly: every fixture has the same small shapes, so the operations compiled for one serve the next
    (loss, info), grads = jax.value_and_grad(loss_fn, has_aux=True)(agent.params, agent, batch, rep.draws)
    info = {k: np.asarray(v) for k, v in info.items()}
    checks = [Check(case, "loss", "total loss", relative_error(loss, fixture.arrays["out/loss"]))]
    authors_info = fixture.flat("info")
    for key, want in sorted(authors_info.items()):
        if key not in rep.metrics:
            raise QchunkError(f"{case}: no qchunk counterpart for the authors' metric {key!r}")
        checks.append(Check(case, "metric", key, relative_error(rep.metrics[key](info), want)))

    authors_grads = fixture.tree("grads")
    for module in rep.unmapped:
        leaves = jax.tree_util.tree_leaves(authors_grads.get(module, {}))
        if any(np.any(np.asarray(x) != 0) for x in leaves):
            raise QchunkError(f"{case}: the authors' gradient reaches {module}, which has no qchunk counterpart")
    want_grads = rep.params(authors_grads)
    if leaf_paths(want_grads) != leaf_paths(grads):
        raise QchunkError(f"{case}: gradient trees differ")
    for net in sorted(want_grads):
        checks.append(Check(case, "gradient", net, relative_error(grads[net], want_grads[net])))
    update_info = fixture.flat("update_info")
    stats = authors_grad_stats(grads)
    for key in ("grad/max", "grad/min", "grad/norm"):
        if key in update_info:
            checks.append(Check(case, "metric", key, relative_error(stats[key], update_info[key])))

    new_agent, _ = apply_gradients(agent, grads)
    new_params = fixture.tree("new_params")
    want_params, want_targets = rep.params(new_params), rep.targets(new_params)
    for net in sorted(want_params):
        checks.append(Check(case, "parameters after the update", net,
                            relative_error(new_agent.params[net], want_params[net])))
    for net in sorted(want_targets):
        checks.append(Check(case, "parameters after the update", f"target {net}",
                            relative_error(new_agent.target_params[net], want_targets[net])))

    obs = jnp.asarray(fixture.arrays["act/obs"], jnp.float32)
    actions = agent.act(agent.params, obs, rep.act_noise)
    checks.append(Check(case, "actions", "sample_actions", relative_error(actions, fixture.arrays["act/actions"])))
    return checks


def replay(fixture: Fixture, changes: dict[str, Any] | None = None) -> list[Check]:
    """Every :class:`Check` of ``fixture``, by the replayer of its authors' module; ``changes`` are applied to the
    qchunk config the replayer derives (a mutation check: a changed computation must fail some check)."""
    key = f"{fixture.meta['repo']}:{fixture.meta['module']}"
    target = replayer_of(fixture.meta["repo"], fixture.meta["module"])
    if target is None:
        raise QchunkError(f"{fixture.name}: no replayer for {key}; known: {', '.join(sorted(REPLAYERS))}")
    module, function = target.split(":")
    return getattr(importlib.import_module(module), function)(fixture, changes or {})


def failures(checks: Iterable[Check]) -> list[Check]:
    """The checks over their tolerance."""
    return [c for c in checks if not c.ok]
