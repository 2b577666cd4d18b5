"""Reading CSV files, one way: a path or inline text, a byte-order mark tolerated, the header's
columns checked, rows numbered by their line, a cap on rows. Every importer, training and batch
command reads through ``csv_read`` and turns ``CsvError`` into its own error (a 400, a failed
job, a command error): the message already names the file, the line or the column."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

# Long texts (a product description, a whole dialogue) in one cell are normal for our data.
csv.field_size_limit(10 * 1024 * 1024)


class CsvError(ValueError):
    """A CSV that cannot be used: unreadable, no header, a missing column, too many rows."""


@dataclass
class CsvTable:
    columns: list[str]
    rows: list[dict[str, str]] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the line each row starts on (the header is line 1)
    truncated: bool = False  # more rows than max_rows were there

    def column(self, name: str) -> list[str]:
        """The stripped values of ``name``, one per row."""
        return [(row.get(name) or "").strip() for row in self.rows]


def csv_read(
    path: Path | str | None = None,
    *,
    content: str | None = None,
    columns: Sequence[str] = (),
    max_rows: int | None = None,
    over_max: str = "stop",
) -> CsvTable:
    """The rows (dicts keyed by the header's stripped names) of the CSV at ``path`` or in
    ``content``. ``columns`` must all be in the header. With ``max_rows``, reading stops there
    (``over_max="stop"``, ``truncated`` set) or a longer file is an error (``"error"``)."""
    where = str(path) if path is not None else "the CSV"
    try:
        handle = open(path, newline="", encoding="utf-8-sig") if path is not None else io.StringIO(content or "")  # noqa: SIM115
    except OSError as exc:
        raise CsvError(f"cannot read {where}: {exc.strerror or exc}") from None
    try:
        with handle:
            reader = csv.reader(handle)
            try:
                header = next(reader, None)
            except csv.Error as exc:
                raise CsvError(f"{where}, line 1: not valid CSV ({exc})") from None
            if not header or not any(h.strip() for h in header):
                raise CsvError(f"{where} has no header row naming its columns")
            names = [h.strip().lstrip("\ufeff") for h in header]
            missing = [c for c in columns if c not in names]
            if missing:
                raise CsvError(
                    f"{where}: no column {', '.join(map(repr, missing))} (columns: {', '.join(n for n in names if n)})"
                )
            table = CsvTable(columns=names)
            for record in reader:
                if not record:  # a blank line (a row of empty cells is a row: callers may refuse it)
                    continue
                if max_rows is not None and len(table.rows) >= max_rows:
                    if over_max == "error":
                        raise CsvError(f"{where} has more than {max_rows} rows")
                    table.truncated = True
                    break
                row = {name: value for name, value in zip(names, record) if name}
                if len(record) > len(names):
                    row[None] = record[len(names):]  # cells past the header (callers may refuse them)
                table.rows.append(row)
                table.lines.append(reader.line_num)
    except UnicodeDecodeError:
        raise CsvError(f"{where} is not UTF-8 text; save it as CSV (UTF-8)") from None
    except csv.Error as exc:
        raise CsvError(f"{where}: not valid CSV ({exc})") from None
    return table
