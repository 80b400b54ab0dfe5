"""How two runs' settings differ, in words a user can act on: ``batch_size: 32 there, 16 now``.

Both ``train --resume`` and ``sweep`` refuse a run directory made with other settings; both name each key
that differs (agent fields by their own name, as ``--set`` and the train flags take them) with its two values,
in the form the command line takes (``32,32``, ``none``, ``true``), on one line of bounded length.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

#: Longest shown value; a longer one (a path, a long list) is cut in the middle.
MAX_VALUE_CHARS = 40
#: Most differences named; the rest are counted.
MAX_SHOWN = 6


def show_setting(value: Any) -> str:
    """A setting's value as ``--set`` would take it (``32,32``, ``none``, ``true``), at most
    :data:`MAX_VALUE_CHARS` characters."""
    if value is None:
        text = "none"
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, (list, tuple)):
        text = ",".join(show_setting(v) for v in value)
    else:
        text = str(value)
    if len(text) > MAX_VALUE_CHARS:
        half = (MAX_VALUE_CHARS - 3) // 2
        text = f"{text[:half]}...{text[-half:]}"
    return text


def flat_settings(train: dict[str, Any]) -> dict[str, Any]:
    """A ``TrainConfig.to_dict()`` with the agent overrides lifted to the top (as ``--set`` names them), in
    JSON form (tuples as lists) so that a config read back from disk compares equal to a planned one."""
    train = json.loads(json.dumps(train))
    flat = {k: v for k, v in train.items() if k != "overrides"}
    for k, v in (train.get("overrides") or {}).items():
        flat[f"overrides.{k}" if k in flat else k] = v
    return flat


def setting_differences(old: dict[str, Any], new: dict[str, Any], free: Iterable[str] = (),
                        there: str = "there") -> list[str]:
    """``"offline_steps: 100 there, 300 now"`` for every setting in which two ``TrainConfig.to_dict()``
    differ, except the ``free`` fields (those that may change on resume); ``there`` names the old side."""
    a, b = flat_settings(old), flat_settings(new)
    free = set(free)
    return [f"{k}: {show_setting(a.get(k))} {there}, {show_setting(b.get(k))} now"
            for k in sorted(set(a) | set(b)) if k not in free and a.get(k) != b.get(k)]


def summarize_differences(diff: list[str]) -> str:
    """The differences joined for one line: the first :data:`MAX_SHOWN`, then how many more."""
    shown = "; ".join(diff[:MAX_SHOWN])
    return shown + (f"; and {len(diff) - MAX_SHOWN} more" if len(diff) > MAX_SHOWN else "")
