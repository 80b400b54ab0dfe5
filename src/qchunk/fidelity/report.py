"""Regenerate the measured table of ``docs/fidelity.md`` from the fidelity fixtures.

``python -m qchunk.fidelity.report`` replays every fixture (:func:`~qchunk.fidelity.replay.replay`) and writes,
between the markers ``<!-- fidelity-table:begin -->`` and ``<!-- fidelity-table:end -->``, one row per recorded
case with the largest relative difference per component: the total loss, the critic's and the actor's logged
terms, the gradients (largest over the networks), the parameters after the update, and the actions. Exit status
1 when a check is over its tolerance (the table is written all the same).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from qchunk.fidelity.fixture import FIXTURE_DIR, fixture_paths, load_fixture
from qchunk.fidelity.replay import TOLERANCE, Check, replay

BEGIN, END = "<!-- fidelity-table:begin -->", "<!-- fidelity-table:end -->"
DOC = Path(__file__).resolve().parents[3] / "docs" / "fidelity.md"
COLUMNS = (
    ("total loss", lambda c: c.kind == "loss"),
    ("critic terms", lambda c: c.kind == "metric" and c.name.startswith("critic/")),
    ("actor terms", lambda c: c.kind == "metric" and not c.name.startswith(("critic/", "grad/"))),
    ("gradients", lambda c: c.kind == "gradient" or c.name.startswith("grad/")),
    ("params after update", lambda c: c.kind == "parameters after the update"),
    ("actions", lambda c: c.kind == "actions"),
)


def row(case: str, authors: str, checks: Sequence[Check]) -> str:
    """One markdown row: the case, the authors' file, the largest error per column (``-`` if none), a verdict."""
    cells = []
    for _, wanted in COLUMNS:
        errors = [c.error for c in checks if wanted(c)]
        cells.append(f"{max(errors):.1e}" if errors else "-")
    verdict = "equal" if all(c.ok for c in checks) else "**DIFFERENT**"
    return f"| {case} | {authors} | " + " | ".join(cells) + f" | {verdict} |"


def table(directory: Path = FIXTURE_DIR) -> tuple[str, bool]:
    """The markdown table over every fixture in ``directory`` and whether every check passed."""
    header = "| case | authors' code | " + " | ".join(name for name, _ in COLUMNS) + " | |"
    lines = [header, "|" + "---|" * (len(COLUMNS) + 3)]
    ok = True
    for path in fixture_paths(directory):
        fixture = load_fixture(path)
        checks = replay(fixture)
        ok &= all(c.ok for c in checks)
        authors = f"{fixture.meta['repo']} `{fixture.meta['module'].replace('.', '/')}.py`"
        lines.append(row(fixture.name, authors, checks))
        print(f"{fixture.name}: {'equal' if all(c.ok for c in checks) else 'DIFFERENT'}", file=sys.stderr)
    tolerances = ", ".join(f"{kind} {tol:g}" for kind, tol in TOLERANCE.items())
    lines += ["", f"Largest relative difference, `max |qchunk - authors| / max |authors|` per array. Tolerances: "
              f"{tolerances}."]
    return "\n".join(lines), ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qchunk.fidelity.report", description=__doc__.split("\n\n")[0])
    parser.add_argument("--fixtures", type=Path, default=FIXTURE_DIR, help="fixture directory (default: %(default)s)")
    parser.add_argument("--doc", type=Path, default=DOC, help="the page to update (default: %(default)s)")
    args = parser.parse_args(argv)
    if not fixture_paths(args.fixtures):
        print(f"error: no fidelity fixture (*.npz) in {args.fixtures}", file=sys.stderr)
        return 2
    if not args.doc.is_file():
        print(f"error: {args.doc} does not exist (the page whose table this command rewrites)", file=sys.stderr)
        return 2
    text = args.doc.read_text()
    if BEGIN not in text or END not in text:
        print(f"error: {args.doc} lacks the markers {BEGIN} ... {END}", file=sys.stderr)
        return 2
    body, ok = table(args.fixtures)
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    tmp = args.doc.with_name(args.doc.name + ".tmp")
    tmp.write_text(f"{head}{BEGIN}\n{body}\n{END}{tail}")
    tmp.replace(args.doc)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
