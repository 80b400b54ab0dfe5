"""User-facing errors.

Anything a user can cause (a bad name, a missing or corrupt file, a bad number) raises
:class:`QchunkError` with one line that names the problem and the fix. The CLI prints that line and
exits with status 2 without a traceback; library users can catch it like any ``ValueError``.
"""

from __future__ import annotations

import math


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
