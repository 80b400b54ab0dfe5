"""Seeds as a leading axis: S agents stacked into one pytree, advanced by one jitted ``jax.vmap``-ed update.

A single run is S = 1 of the same code path (its kernel skips the vmap, which is slower for an axis of
one). Seeds that are out of step (a resumed run whose seeds were
checkpointed at different episode ends, or one seed still warming up) keep their state through a mask:
a seed without a batch in a round is left unchanged.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from qchunk.errors import require

Request = tuple[str, dict[str, np.ndarray]]
"""``("one", batch)`` for ``agent.update`` or ``("many", batches)`` (leading axis U) for ``update_many``."""


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
    """The S agents of a run stacked on a leading axis."""

    def __init__(self, agents: Sequence[Any]):
        import jax
        import jax.numpy as jnp

        self.size = len(agents)
        self._one = self._over_seeds(lambda agent, batch: agent.update(batch))
        self._many = self._over_seeds(lambda agent, batch: agent.update_many(batch))
        self._take = jax.jit(lambda tree, k: jax.tree_util.tree_map(lambda x: x[k], tree))

        def keep(mask, new, old):
            def pick(n, o):
                return jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), n, o)

            return jax.tree_util.tree_map(pick, new, old)

        self._keep = jax.jit(keep)
        self.stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *agents)
        self._slices: dict[int, Any] = {}

    def _over_seeds(self, fn):
        """``fn(agent, batch) -> (agent, info)`` jitted over the seed axis: ``jax.vmap`` for S > 1; for S = 1
        the plain kernel between a squeeze and an expand (on CPU a vmap over an axis of one compiles to
        batched kernels about 35% slower; measured in the closing note of the redesign)."""
        import jax

        if self.size > 1:
            return jax.jit(jax.vmap(fn))

        def one_seed(agent, batch):
            first = jax.tree_util.tree_map(lambda x: x[0], (agent, batch))
            return jax.tree_util.tree_map(lambda x: x[None], fn(*first))

        return jax.jit(one_seed)

    def agent(self, k: int) -> Any:
        """Seed ``k``'s current agent (sliced once per update round)."""
        if k not in self._slices:
            self._slices[k] = self._take(self.stacked, k)
        return self._slices[k]

    def update(self, requests: Sequence[Request | None]) -> list[SeedInfo | None]:
        """Apply seed k's request to seed k for every k (None: that seed does not update this round)."""
        require(len(requests) == self.size, "one request slot per seed")
        infos: list[SeedInfo | None] = [None] * self.size
        for kind in ("one", "many"):
            members = [k for k, r in enumerate(requests) if r is not None and r[0] == kind]
            if not members:
                continue
            filler = requests[members[0]][1]
            batches = [r[1] if r is not None and r[0] == kind else filler for r in requests]
            batch = {key: np.stack([b[key] for b in batches]) for key in filler}
            new, info = (self._one if kind == "one" else self._many)(self.stacked, batch)
            if len(members) < self.size:
                mask = np.zeros(self.size, bool)
                mask[members] = True
                new = self._keep(mask, new, self.stacked)
            self.stacked = new
            host: dict[str, np.ndarray] = {}
            for k in members:
                infos[k] = SeedInfo(info, k, kind == "many", host)
        self._slices.clear()
        return infos
