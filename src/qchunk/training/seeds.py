"""Seeds as a leading axis: S agents stacked into one pytree, advanced by one jitted update of all of them.

How the update maps over the seed axis (:func:`over_seeds`): ``vmap`` (batched kernels, for GPUs) or ``map``
(``lax.map``: each seed's own kernel in turn inside the one jitted call, for CPUs, where XLA's batched matmuls
over seeds are slower than S plain ones: ``bench --suite seeds``); ``auto`` picks by backend. A single run is
S = 1 of the same code path (its kernel is the plain one). Seeds that are out of step (a resumed run whose seeds were
checkpointed at different episode ends, or one seed still warming up) keep their state through a mask:
a seed without a batch in a round is left unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from qchunk.errors import require

Request = tuple[str, Any]
"""``("one", batch)`` for ``agent.update``, ``("many", batches)`` (leading axis U) for ``update_many``, or
``("gather", (device_data, starts (U, B)))``: ``update_many`` on the windows at ``starts`` of a
:class:`~qchunk.data.device.DeviceData`, gathered inside the jitted update."""

SEED_AXIS_MODES = ("auto", "vmap", "map")


def resolve_seed_axis(mode: str) -> str:
    """``vmap`` or ``map`` for ``mode`` (``auto``: ``map`` on a CPU backend, ``vmap`` on GPUs and TPUs)."""
    require(mode in SEED_AXIS_MODES, f"seed axis must be one of {', '.join(SEED_AXIS_MODES)}, got {mode!r}")
    if mode != "auto":
        return mode
    import jax

    return "map" if jax.default_backend() == "cpu" else "vmap"


def over_seeds(fn, size: int, mode: str):
    """``fn(agent, batch, shared) -> (agent, info)`` as one jitted function of ``(agents, batches, shared)``
    whose first two have a leading seed axis of ``size`` (``shared`` is the same for every seed): ``jax.vmap``
    or ``lax.map`` (see :func:`resolve_seed_axis`); for ``size == 1`` the plain kernel between a squeeze and an
    expand (on CPU a vmap over an axis of one compiles to batched kernels about 35% slower)."""
    import jax

    if size == 1:
        def one_seed(agents, batches, shared):
            first = jax.tree_util.tree_map(lambda x: x[0], (agents, batches))
            return jax.tree_util.tree_map(lambda x: x[None], fn(*first, shared))

        return jax.jit(one_seed)
    if resolve_seed_axis(mode) == "vmap":
        return jax.jit(jax.vmap(fn, in_axes=(0, 0, None)))

    def mapped(agents, batches, shared):
        return jax.lax.map(lambda pair: fn(*pair, shared), (agents, batches))

    return jax.jit(mapped)


class SeedInfo(Mapping):
    """Seed ``k``'s metrics of one vmapped update, copied to the host only when read (a log row)."""

    def __init__(self, device: Mapping[str, Any], k: int, last: bool, host: dict[str, np.ndarray]):
        self._device, self._k, self._last, self._host = device, k, last, host

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self._host:
            self._host[key] = np.asarray(self._device[key])
        value = self._host[key][self._k]
        return value[-1] if self._last else value

    def __iter__(self) -> Iterator[str]:
        return iter(self._device)

    def __len__(self) -> int:
        return len(self._device)


class SeedAxis:
    """The S agents of a run stacked on a leading axis, updated together (``mode``: see :func:`over_seeds`)."""

    def __init__(self, agents: Sequence[Any], mode: str = "auto"):
        import jax
        import jax.numpy as jnp

        from qchunk.agents.td import scan_updates
        from qchunk.data.device import gather_chunks

        self.size = len(agents)
        self.mode = resolve_seed_axis(mode)
        horizon, discount = agents[0].horizon, float(agents[0].config.discount)

        def many(agent, batches, _):  # agent.update_many, with the update looked up now (tests patch it)
            return scan_updates(lambda a, b: a.update(b), agent, batches)

        def gathered(agent, starts, arrays):
            return many(agent, gather_chunks(arrays, starts, horizon, discount), None)

        self._kernels = {"one": over_seeds(lambda agent, batch, _: agent.update(batch), self.size, self.mode),
                         "many": over_seeds(many, self.size, self.mode),
                         "gather": over_seeds(gathered, self.size, self.mode)}
        self._take = jax.jit(lambda tree, k: jax.tree_util.tree_map(lambda x: x[k], tree))

        def keep(mask, new, old):
            def pick(n, o):
                return jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), n, o)

            return jax.tree_util.tree_map(pick, new, old)

        self._keep = jax.jit(keep)
        self.stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *agents)
        self._slices: dict[int, Any] = {}

    def agent(self, k: int) -> Any:
        """Seed ``k``'s current agent (sliced once per update round)."""
        if k not in self._slices:
            self._slices[k] = self._take(self.stacked, k)
        return self._slices[k]

    @staticmethod
    def _group(request: Request) -> tuple:
        """Requests that can share one call: same kind, same number of updates, same device data."""
        kind, payload = request
        if kind == "one":
            return ("one",)
        if kind == "many":
            return ("many", len(next(iter(payload.values()))))
        data, starts = payload
        return ("gather", starts.shape, id(data))

    def update(self, requests: Sequence[Request | None]) -> list[SeedInfo | None]:
        """Apply seed k's request to seed k for every k (None: that seed does not update this round)."""
        require(len(requests) == self.size, "one request slot per seed")
        infos: list[SeedInfo | None] = [None] * self.size
        groups: dict[tuple, list[int]] = {}
        for k, r in enumerate(requests):
            if r is not None:
                groups.setdefault(self._group(r), []).append(k)
        for group, members in groups.items():
            kind = group[0]
            payloads = [requests[k][1] if k in members else requests[members[0]][1] for k in range(self.size)]
            if kind == "gather":
                shared = payloads[0][0].arrays
                batch = np.stack([p[1] for p in payloads])
            else:
                shared = None
                batch = {key: np.stack([p[key] for p in payloads]) for key in payloads[0]}
            new, info = self._kernels[kind](self.stacked, batch, shared)
            if len(members) < self.size:
                mask = np.zeros(self.size, bool)
                mask[members] = True
                new = self._keep(mask, new, self.stacked)
            self.stacked = new
            host: dict[str, np.ndarray] = {}
            for k in members:
                infos[k] = SeedInfo(info, k, kind != "one", host)
        self._slices.clear()
        return infos
