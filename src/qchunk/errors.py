"""User-facing errors.

Anything a user can cause (a bad name, a missing or corrupt file, a bad number) raises
:class:`QchunkError` with one line that names the problem and the fix. The CLI prints that line and
exits with status 2 without a traceback; library users can catch it like any ``ValueError``.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable


class QchunkError(ValueError):
    """A problem with the user's input: one line naming the problem and the fix."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`QchunkError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise QchunkError(message)


def require_finite(value: float, flag: str) -> None:
    """Raise :class:`QchunkError` naming ``flag`` unless ``value`` is a finite number (not NaN or +-inf).

    Comparisons with NaN are always false and ``inf`` passes every lower bound, so range checks alone
    let both through; call this first.
    """
    try:
        finite = math.isfinite(value)
    except TypeError:
        raise QchunkError(f"{flag} must be a number, got {value!r}") from None
    if not finite:
        raise QchunkError(f"{flag} must be a finite number, got {value!r}; give a finite value")


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A hint for a misspelt ``name``: ``" (did you mean 'quick'?)"`` with the closest of ``choices``, or ``""``
    when none is close. Append it right after the name in a message::

        f"unknown preset {name!r}{did_you_mean(name, PRESETS)}; choose one of: ..."
    """
    choices = [str(c) for c in choices]
    folded = {c.lower(): c for c in choices}
    if str(name).lower() in folded and folded[str(name).lower()] != name:  # only the case differs
        return f" (did you mean {folded[str(name).lower()]!r}?)"
    close = difflib.get_close_matches(str(name), choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
