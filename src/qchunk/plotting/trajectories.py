"""``qchunk analyze trajectories``: the end-effector path of a range of online steps, one panel per run.

The paper's exploration figure (section 5.4) compares the first 1000 online steps of QC and BFN: QC's
open-loop chunks sweep the workspace in long coherent strokes, BFN's single-step exploration jitters in
place. Each run directory must hold ``online_states.npz`` (written when training runs with
``--save-online-states``; layout in :class:`qchunk.analysis.coherence.TrajectoryLog`). The path is colored
by online step and broken at episode resets; every panel shares the axis limits, and its title gives the
temporal coherence of the plotted steps.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
import tyro

from qchunk.analysis.coherence import load_online_states, log_coherence, path_breaks
from qchunk.errors import QchunkError, require
from qchunk.fileio import atomic_open
from qchunk.ownership import figure_metadata, refuse_foreign_files
from qchunk.training.run_dir import ONLINE_STATES_FILE, RunDir, in_own_folder


@dataclass
class TrajectoriesArgs:
    """Plot the end-effector path of online training steps, runs side by side (PNG and SVG)."""

    run_dirs: Annotated[tuple[str, ...], tyro.conf.Positional,
                        tyro.conf.arg(metavar="RUN_DIR", help_behavior_hint="(required: one or more)")]
    """Run directories holding `online_states.npz` (or paths to such files), one panel each."""
    steps: str = "0-1000"
    """Online environment steps to plot, `START-END` (END excluded)."""
    out: str | None = None
    """Output PNG (an SVG is written next to it). Default: `FIRST_RUN_DIR/analysis/trajectories_START-END.png`."""
    view: Literal["3d", "projections"] = "3d"
    """`3d`: one 3-D panel per run; `projections`: top (x-y) and side (x-z) views per run."""
    labels: tuple[str, ...] | None = None
    """Panel titles, one per run (default: the run's agent and directory name)."""
    every: int = 5
    """Sampling period of the temporal coherence shown in the titles."""


def parse_steps(text: str) -> tuple[int, int]:
    """``"0-1000"`` -> ``(0, 1000)`` (end excluded). Raises :class:`QchunkError` on anything else."""
    parts = text.split("-")
    try:
        start, end = (int(p) for p in parts)
    except ValueError:
        raise QchunkError(f"--steps must look like START-END (e.g. 0-1000), got {text!r}") from None
    require(0 <= start < end, f"--steps needs 0 <= START < END, got {text!r}")
    return start, end


@dataclass
class RunPath:
    """The selected rows of one run's trajectory log."""

    label: str
    env_step: np.ndarray
    """``(N,)`` online steps."""
    ee_pos: np.ndarray
    """``(N, 3)`` world positions."""
    episode: np.ndarray
    """``(N,)`` episode indices."""
    coherence: float


def _run_label(path: Path) -> str:
    run_dir = path.parent if path.is_file() else path
    try:
        return f"{RunDir(run_dir).read().train.agent} ({run_dir.name})"
    except QchunkError:
        return run_dir.name


def load_run_path(run: str | os.PathLike, steps: tuple[int, int], label: str | None = None,
                  every: int = 5) -> RunPath:
    """Read the rows of ``run`` (a run directory or an ``online_states.npz``) with ``steps[0] <= env_step < steps[1]``.

    Raises:
        QchunkError: no such run or file, a corrupt file, or no logged step in the range.
    """
    path = Path(run).expanduser()
    require(path.exists(), f"{path} does not exist")
    states = path if path.is_file() else RunDir(path).file(ONLINE_STATES_FILE)
    data = load_online_states(states)
    sel = (data["env_step"] >= steps[0]) & (data["env_step"] < steps[1])
    if not sel.any():
        have = (f"it holds steps {int(data['env_step'].min())}-{int(data['env_step'].max()) + 1}"
                if len(data["env_step"]) else "it is empty")
        raise QchunkError(f"{states} has no online step in {steps[0]}-{steps[1]}; {have}")
    env_step, ee_pos, episode = data["env_step"][sel], data["ee_pos"][sel].astype(np.float64), data["episode"][sel]
    return RunPath(label or _run_label(path), env_step, ee_pos, episode,
                   log_coherence(env_step, ee_pos, episode, every))


def _segments(p: RunPath, dims: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Line segments ``(S, 2, len(dims))`` between consecutive rows of one episode, and their steps ``(S,)``."""
    cont = ~path_breaks(p.env_step, p.episode)[1:]
    pts = p.ee_pos[:, list(dims)]
    return np.stack([pts[:-1][cont], pts[1:][cont]], axis=1), p.env_step[1:][cont]


def plot_trajectories(paths: Sequence[RunPath], out: str | os.PathLike, steps: tuple[int, int],
                      view: str = "3d") -> list[Path]:
    """Draw ``paths`` side by side and write ``out`` (PNG) and the same name with ``.svg``, atomically.

    Returns:
        The written files ``[png, svg]``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from mpl_toolkits.mplot3d.art3d import Line3DCollection

    n = len(paths)
    allpos = np.concatenate([p.ee_pos for p in paths])
    lo, hi = allpos.min(axis=0), allpos.max(axis=0)
    pad = 0.05 * max(float((hi - lo).max()), 1e-3)
    lo, hi = lo - pad, hi + pad
    norm = matplotlib.colors.Normalize(steps[0], steps[1])
    cmap = matplotlib.colormaps["viridis"]
    names = "xyz"

    if view == "3d":
        fig = plt.figure(figsize=(4.6 * n + 1.0, 4.6))
        axes = [fig.add_subplot(1, n, i + 1, projection="3d") for i in range(n)]
        for ax, p in zip(axes, paths, strict=True):
            segs, t = _segments(p, (0, 1, 2))
            ax.add_collection(Line3DCollection(segs, cmap=cmap, norm=norm, array=t, linewidths=1.0))
            first = p.ee_pos[path_breaks(p.env_step, p.episode)]
            ax.scatter(first[:, 0], first[:, 1], first[:, 2], color="black", s=14, depthshade=False)
            ax.set(xlim=(lo[0], hi[0]), ylim=(lo[1], hi[1]), zlim=(lo[2], hi[2]), xlabel="x (m)", ylabel="y (m)",
                   zlabel="z (m)")
            ax.set_title(f"{p.label}\ncoherence {p.coherence:.3f}", fontsize=10)
            ax.tick_params(labelsize=7)
        rows = [axes]
    else:
        fig, grid = plt.subplots(2, n, figsize=(4.0 * n + 1.0, 7.4), squeeze=False, layout="constrained")
        for j, p in enumerate(paths):
            first = p.ee_pos[path_breaks(p.env_step, p.episode)]
            for i, dims in enumerate(((0, 1), (0, 2))):
                ax = grid[i][j]
                segs, t = _segments(p, dims)
                ax.add_collection(LineCollection(segs, cmap=cmap, norm=norm, array=t, linewidths=1.0))
                ax.scatter(first[:, dims[0]], first[:, dims[1]], color="black", s=14, zorder=3)
                ax.set(xlim=(lo[dims[0]], hi[dims[0]]), ylim=(lo[dims[1]], hi[dims[1]]), aspect="equal",
                       xlabel=f"{names[dims[0]]} (m)", ylabel=f"{names[dims[1]]} (m)")
                ax.tick_params(labelsize=7)
            grid[0][j].set_title(f"{p.label}\ncoherence {p.coherence:.3f}\ntop view (x-y)", fontsize=10)
            grid[1][j].set_title("side view (x-z)", fontsize=10)
        rows = list(grid)
    mappable = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(mappable, ax=[ax for row in rows for ax in row], shrink=0.8, pad=0.08 if view == "3d" else 0.02,
                 label="online environment step")
    fig.suptitle(f"End-effector path, online steps {steps[0]}-{steps[1]} (black dots: episode starts)", fontsize=11)

    out = Path(out).expanduser()
    written = []
    for path, fmt in ((out, "png"), (out.with_suffix(".svg"), "svg")):
        with atomic_open(path, "wb") as f:
            fig.savefig(f, format=fmt, dpi=150, bbox_inches="tight", metadata=figure_metadata(fmt))
        written.append(path)
    plt.close(fig)
    return written


def run_trajectories(args: TrajectoriesArgs) -> int:
    """The ``qchunk analyze trajectories`` command."""
    steps = parse_steps(args.steps)
    require(len(args.run_dirs) >= 1, "qchunk analyze trajectories needs at least one RUN_DIR (a run trained with "
                                     "--save-online-states), e.g. qchunk analyze trajectories runs/.../seed0")
    require(args.every >= 1, f"--every must be >= 1, got {args.every}")
    labels = args.labels or (None,) * len(args.run_dirs)
    require(len(labels) == len(args.run_dirs),
            f"--labels needs one label per RUN_DIR ({len(args.run_dirs)}), got {len(labels)}")
    paths = [load_run_path(r, steps, label, args.every) for r, label in zip(args.run_dirs, labels, strict=True)]
    if args.out is None:
        first = Path(args.run_dirs[0]).expanduser()
        first = first.parent if first.is_file() else first
        out = first / "analysis" / f"trajectories_{steps[0]}-{steps[1]}.png"
    else:
        out = Path(args.out).expanduser()
        require(out.suffix.lower() == ".png", f"--out must end in .png (an .svg is written next to it), got {out}")
    refuse_foreign_files([out, out.with_suffix(".svg")], also=in_own_folder)  # replaced only if qchunk drew it
    for path in plot_trajectories(paths, out, steps, args.view):
        print(f"wrote {path}")
    for p in paths:
        print(f"{p.label}: {len(p.env_step)} steps, {len(np.unique(p.episode))} episode(s), "
              f"temporal coherence {p.coherence:.4f} (every {args.every} steps)")
    return 0
