"""User-facing errors.

Anything a user can cause (a bad name, a missing or corrupt file, a bad number) raises
:class:`QchunkError` with one line that names the problem and the fix. The CLI prints that line and
exits with status 2 without a traceback; library users can catch it like any ``ValueError``.
"""

from __future__ import annotations


class QchunkError(ValueError):
    """A problem with the user's input: one line naming the problem and the fix."""


def require(condition: bool, message: str) -> None:
    """Raise :class:`QchunkError` with ``message`` unless ``condition`` holds."""
    if not condition:
        raise QchunkError(message)
