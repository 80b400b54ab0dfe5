"""The one grammar of the command line's lists, seeds, counts and names, shared by every command.

* **Lists** (``--agents``, ``--envs``, ``--seeds``): ``a,b``, ``a b``, repeated flags and unexpanded shell
  braces (``task{1..5}``, ``{a,b}``) all work (:func:`parse_names`).
* **Seeds**: ``0-3``, ``0..3``, ``{0..3}``, ``0,3,5``, ``0 1 2`` and mixtures (``0-2,7``); a seed given twice,
  a negative seed or an empty range is refused (:func:`parse_seeds`).
* **Counts** (every integer option): ``1000000``, ``1_000_000``, ``1e6``, ``2.5e3``; a count that is not a whole
  number is refused (:func:`parse_count`).
* **Names** (agents, environments, recipes, presets, references, settings): an unknown one is refused with the
  nearest valid name (:func:`check_name`, :func:`qchunk.errors.did_you_mean`).

Every failure is a one-line :class:`~qchunk.errors.QchunkError`.
"""

from __future__ import annotations

import decimal
import re
from collections.abc import Iterable

from qchunk.errors import QchunkError, did_you_mean

_BRACE_RANGE = re.compile(r"\{(-?\d+)\.\.(-?\d+)\}")
_BRACE_LIST = re.compile(r"\{([^{}]*,[^{}]*)\}")
#: What a count looks like: digits with optional underscores, an optional fraction and exponent.
COUNT = re.compile(r"[+-]?\d[\d_]*(\.\d*)?([eE][+-]?\d+)?|[+-]?\.\d+([eE][+-]?\d+)?")


def expand_braces(text: str) -> list[str]:
    """Expand shell-style braces the shell left alone: ``task{1..3}`` and ``{a,b}`` (nested, left to right).

    >>> expand_braces("t{1..3}-v0")
    ['t1-v0', 't2-v0', 't3-v0']
    """
    found = [m for m in (_BRACE_RANGE.search(text), _BRACE_LIST.search(text)) if m]
    if not found:
        return [text]
    m = min(found, key=lambda m: m.start())  # leftmost first, as the shell
    head, tail = text[:m.start()], text[m.end():]
    if m.re is _BRACE_RANGE:
        lo, hi = int(m[1]), int(m[2])
        step = 1 if hi >= lo else -1
        parts = [str(i) for i in range(lo, hi + step, step)]
    else:
        parts = m[1].split(",")
    return [out for part in parts for out in expand_braces(head + part + tail)]


def split_commas(text: str) -> list[str]:
    """Split on commas that are not inside braces."""
    parts, depth, cur = [], 0, []
    for ch in text:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def flatten(values) -> list[str]:
    """Strings from a string or nested iterables of strings (tyro's repeated multi-valued flags)."""
    if isinstance(values, str):
        return [values]
    flat: list[str] = []
    for v in values:
        flat.extend(flatten(v))
    return flat


def parse_names(values: str | Iterable[str] | Iterable[Iterable[str]]) -> list[str]:
    """Flatten repeated/multi-valued flags, split comma and space lists, expand braces, drop duplicates (order
    kept)."""
    out: list[str] = []
    for value in flatten(values):
        for word in value.split():
            for part in split_commas(word):
                for name in expand_braces(part.strip()):
                    if name and name not in out:
                        out.append(name)
    return out


def parse_seeds(values: str | Iterable[str] | Iterable[Iterable[str]], flag: str = "--seeds") -> list[int]:
    """Seeds from ``0-3``, ``0..3``, ``{0..3}``, ``0,3,5``, ``0 1 2`` or repeated values, in the order given.

    Raises:
        QchunkError: anything that is not a non-negative integer or range, an empty range, a seed given twice,
            or no seed at all.
    """
    seeds: list[int] = []
    for value in flatten(values):
        for word in value.split():
            for part in split_commas(word):
                for token in expand_braces(part.strip()):
                    seeds.extend(_seed_range(token, flag))
    if not seeds:
        raise QchunkError(f"{flag} names no seed; give integers, ranges like 0-3 or 0..3, or lists like 0,3,5")
    twice = sorted({s for s in seeds if seeds.count(s) > 1})
    if twice:
        raise QchunkError(f"{flag} gives seed {twice[0]} twice; list each seed once (e.g. 0-3 or 0,3,5)")
    return seeds


def _seed_range(token: str, flag: str) -> list[int]:
    if not token:
        return []
    m = re.fullmatch(r"(\d+)\s*(?:-|\.\.)\s*(\d+)", token)
    if m:
        lo, hi = int(m[1]), int(m[2])
        if hi < lo:
            raise QchunkError(f"{flag}: bad seed range {token!r}, the end is below the start")
        return list(range(lo, hi + 1))
    if token.isdigit():
        return [int(token)]
    why = "seeds are >= 0" if re.fullmatch(r"-\d+", token) else "use integers >= 0"
    raise QchunkError(f"{flag}: bad seed {token!r} ({why}); write ranges like 0-3 or 0..3, or lists like 0,3,5")


def looks_like_count(text: str) -> bool:
    """Whether ``text`` is written like a number (``12``, ``1_000``, ``1e6``, ``2.5e3``)."""
    return COUNT.fullmatch(text.strip()) is not None


def parse_count(text: str, flag: str) -> int:
    """A whole number from ``1000000``, ``1_000_000``, ``1e6`` or ``2.5e3`` (exact, however large).

    Raises:
        QchunkError: the text is not a number, or not a whole one.
    """
    raw = text.strip()
    if not looks_like_count(raw):
        raise QchunkError(f"{flag}: {text!r} is not an integer (write e.g. 1000000, 1_000_000 or 1e6)")
    try:
        value = decimal.Decimal(raw.replace("_", ""))
    except decimal.InvalidOperation:
        raise QchunkError(f"{flag}: {text!r} is not an integer (write e.g. 1000000, 1_000_000 or 1e6)") from None
    if value != value.to_integral_value():
        raise QchunkError(f"{flag}: {text!r} is not a whole number")
    return int(value)


def check_name(value: str, choices: Iterable[str], what: str) -> str:
    """``value`` if it is one of ``choices``; else a one-line QchunkError ``unknown WHAT 'x' (did you mean
    'y'?); choose one of: ...``."""
    choices = [str(c) for c in choices]
    if value not in choices:
        raise QchunkError(f"unknown {what} {value!r}{did_you_mean(value, choices)}; choose one of: "
                          f"{', '.join(choices)}")
    return value
