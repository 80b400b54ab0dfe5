"""Reports of sweeps (``qchunk report SWEEP_DIR``): table-1-style numbers with CIs, figures, metadata."""

from qchunk.reporting.report import ReportArgs, write_report

__all__ = ["ReportArgs", "write_report"]
