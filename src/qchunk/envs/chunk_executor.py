"""Open-loop execution of action chunks: query the policy once per chunk, play its actions one per step."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import numpy as np


class ChunkExecutor:
    """A queue of planned actions for one environment.

    ``act(observation)`` returns the next action; when the queue is empty it first calls
    ``policy(observation) -> (h, A)`` and queues all h actions, which then execute open-loop (the policy
    is not consulted again until they are used up). ``reset()`` must be called when an episode ends so a
    new episode never inherits the old episode's plan.
    """

    def __init__(self, policy: Callable[[np.ndarray], np.ndarray] | None = None):
        self.policy = policy
        self._queue: deque[np.ndarray] = deque()
        self.queries = 0

    def reset(self) -> None:
        """Drop any queued actions (call at every episode end)."""
        self._queue.clear()

    @property
    def pending(self) -> int:
        """Queued actions not yet executed."""
        return len(self._queue)

    def push(self, chunk: np.ndarray) -> None:
        """Queue a planned chunk ``(h, A)`` (for callers that query the policy themselves, batched)."""
        chunk = np.asarray(chunk)
        if chunk.ndim != 2:
            raise ValueError(f"a chunk must have shape (h, A), got {chunk.shape}")
        self._queue.extend(chunk)
        self.queries += 1

    def pop(self) -> np.ndarray:
        """The next queued action."""
        return self._queue.popleft()

    def act(self, observation: np.ndarray) -> np.ndarray:
        """The next action, querying ``policy(observation)`` first if the queue is empty."""
        if not self._queue:
            self.push(self.policy(observation))
        return self.pop()
