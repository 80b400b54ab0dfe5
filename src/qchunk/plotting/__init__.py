"""Learning curves from run directories: reading runs, stratified-bootstrap CIs, figures (``qchunk plot``).

From Python::

    from qchunk.plotting import load_runs, plot_curves
    runs = load_runs(["runs/sweeps/paper-main"])          # labelled by agent (+ any differing setting)
    plot_curves(runs, "fig.png", reference="paper")       # writes fig.png and fig.svg
"""

from qchunk.plotting.bootstrap import Interval, point_estimate, stratified_bootstrap, stratified_bootstrap_ci
from qchunk.plotting.curves import Curve, compute_curves, plot_curves
from qchunk.plotting.runs import RunRecord, assign_labels, find_run_dirs, load_runs, read_run

__all__ = [
    "Curve",
    "Interval",
    "RunRecord",
    "assign_labels",
    "compute_curves",
    "find_run_dirs",
    "load_runs",
    "plot_curves",
    "point_estimate",
    "read_run",
    "stratified_bootstrap",
    "stratified_bootstrap_ci",
]
