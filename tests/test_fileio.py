"""Atomic writes give files the permissions an ordinary write would (not mkstemp's 0600)."""

import os

import numpy as np
import pytest

from qchunk.fileio import atomic_savez, atomic_write_json, atomic_write_text


@pytest.mark.parametrize(("umask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        atomic_write_json(tmp_path / "b.json", {"k": 1})
        atomic_savez(tmp_path / "c.npz", {"x": np.zeros(2)})
    finally:
        os.umask(old)
    for name in ("a.txt", "b.json", "c.npz"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == mode, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.json", "c.npz"]  # no temp files left
