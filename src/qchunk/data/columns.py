"""The one check every dataset reader runs on the arrays it reads, whatever the format (D4RL-layout npz and
hdf5, OGBench npz, Minari episodes, robomimic demos, ``qchunk data collect`` output): each array's shape,
dtype, length and finite values, before anything uses it. Every failure is one
:class:`~qchunk.errors.QchunkError` line naming the file, the array and what it should be.

A column is one of three kinds, for ``N`` rows:

- ``VECTOR``: ``(N, d)`` numbers (observations, actions, ``qpos``);
- ``SCALAR``: ``(N,)`` numbers, or ``(N, 1)`` (read as ``(N,)``) (rewards);
- ``FLAG``: ``(N,)`` (or ``(N, 1)``) of 0/1, stored as bool, integers or floats (terminals, timeouts).

Numbers are bool, integer or float arrays; floating ones must be finite.
"""

from __future__ import annotations

import zipfile
import zlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from qchunk.errors import QchunkError, require

VECTOR, SCALAR, FLAG = "vector", "scalar", "flag"

#: What reading a damaged, empty or mistyped file raises (numpy's npz reader, zipfile, zlib, h5py).
READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile, zlib.error, RuntimeError)

_SHAPES = {VECTOR: "(N, d)", SCALAR: "(N,)", FLAG: "(N,) of 0/1"}


def read_error(path: Any, e: BaseException) -> QchunkError:
    """The one line for a file that cannot be read as a dataset (``e``: what the reader raised)."""
    text = " ".join(str(e).split())[:120]
    return QchunkError(f"{path}: cannot read the file ({type(e).__name__}: {text}); it is empty, truncated or "
                       "corrupt, or not a dataset file; regenerate or download it again")


def h5_array(group, key: str, where: str) -> np.ndarray:
    """``group[key]`` of an open h5py group as a numpy array; a group or other non-array is one line."""
    import h5py

    item = group.get(key)
    require(isinstance(item, h5py.Dataset), f"{where}: '{key}' is not an array (an hdf5 "
                                            f"{type(item).__name__ if item is not None else 'nothing'})")
    return np.asarray(item[()])


def check_columns(arrays: Mapping[str, Any], kinds: Mapping[str, str], source: str,
                  rows: int | None = None) -> dict[str, np.ndarray]:
    """Check each array of ``arrays`` that ``kinds`` names (key -> ``VECTOR`` / ``SCALAR`` / ``FLAG``; keys
    not present are skipped, other keys are passed through unchecked) and return the arrays, scalar and
    flag columns as ``(N,)``.

    Args:
        arrays: the arrays as read.
        kinds: the kind of each column of the format.
        source: the file (or ``file: group``) in messages.
        rows: the number of rows every column must have (default: that of the first checked column, which
            must be at least 1).
    """
    out = dict(arrays)
    for key, kind in kinds.items():
        if key not in arrays:
            continue
        a = arrays[key]
        require(isinstance(a, np.ndarray) and a.dtype.kind in "biuf",
                f"{source}: '{key}' holds {getattr(a, 'dtype', type(a).__name__)}, not numbers; it must be "
                f"{_SHAPES[kind]}")
        shape = tuple(a.shape)
        fits = (len(shape) == 2 and shape[1] >= 1) if kind == VECTOR else \
            (len(shape) == 1 or (len(shape) == 2 and shape[1] == 1))
        require(fits, f"{source}: '{key}' has shape {shape}; it must be {_SHAPES[kind]}, one "
                      f"{'row' if kind == VECTOR else 'value'} per step")
        if rows is None:
            rows = shape[0]
            require(rows > 0, f"{source}: '{key}' has no rows; the dataset is empty")
        require(shape[0] == rows, f"{source}: '{key}' has {shape[0]} rows, the other arrays {rows}; the file is "
                                  "inconsistent or cut short, regenerate it")
        if kind != VECTOR:
            a = a.reshape(rows)
        if a.dtype.kind == "f":
            bad = ~np.isfinite(a)
            if bad.any():
                first = int(np.argwhere(bad)[0][0])
                raise QchunkError(f"{source}: '{key}' holds NaN or inf ({int(bad.sum())} values, first at row "
                                  f"{first}); clean or regenerate the dataset")
        if kind == FLAG:
            require(np.isin(a, (0, 1)).all(), f"{source}: '{key}' must hold only 0 and 1 (or booleans)")
        out[key] = a
    return out


__all__ = ["FLAG", "READ_ERRORS", "SCALAR", "VECTOR", "check_columns", "h5_array", "read_error"]
