"""Plain-text tables whose columns fit their widest cell: names are never cut, and the
output stays greppable when piped (no box drawing, no terminal-width wrapping)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def table_lines(
    header: Sequence[str], rows: Iterable[Sequence[object]], right: Iterable[int] = ()
) -> list[str]:
    """``header`` and ``rows`` as aligned lines; columns in ``right`` (numbers) align right.

    The last column is not padded, so long free text there costs no trailing blanks.
    """
    cells = [[str(c) for c in header], *([str(c) for c in row] for row in rows)]
    if any(len(row) != len(header) for row in cells):
        raise ValueError("every row needs one cell per column")
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    numeric = set(right)
    lines = []
    for row in cells:
        parts = [
            cell.rjust(w) if i in numeric else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        if len(header) - 1 not in numeric:
            parts[-1] = row[-1]
        lines.append("  ".join(parts).rstrip())
    return lines
