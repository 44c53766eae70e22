"""The appendix's tables, as lines of fixed-width columns.

WeasyPrint spends about a millisecond on every element it lays out, so a 600-row
appendix as an HTML table (3,600 cells) took three of the report's four seconds. Each
row is one element instead: its columns padded to fixed widths in a monospaced font,
long values cut with an ellipsis. That renders five times faster and keeps the columns
aligned on A4 and Letter (112 characters of 7.5pt DejaVu Sans Mono fit either).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.template.defaultfilters import capfirst, floatformat
from django.template.defaultfilters import date as date_format

GAP = "  "
LINE_WIDTH = 110  # characters; see the module docstring


@dataclass(frozen=True)
class Column:
    title: str
    width: int
    value: Callable[[dict], object]
    right: bool = False

    def cell(self, value: object) -> str:
        text = "–" if value in (None, "") else str(value)
        if len(text) > self.width:
            text = text[: self.width - 1] + "…"
        return text.rjust(self.width) if self.right else text.ljust(self.width)


@dataclass(frozen=True)
class Line:
    text: str
    severity: str = ""  # colours the row's left edge


@dataclass(frozen=True)
class Listing:
    header: str
    lines: list[Line]


def listing(columns: list[Column], rows: Iterable[dict], *, severity: str | None = None) -> Listing:
    """`rows` laid out under `columns`; `severity` names the row key that colours each line."""
    if sum(column.width for column in columns) + len(GAP) * (len(columns) - 1) > LINE_WIDTH:
        raise ValueError(f"columns {[column.title for column in columns]} are wider than {LINE_WIDTH} characters")

    def line(cells: Iterable[str]) -> str:
        return GAP.join(cells).rstrip()

    header = line(column.cell(column.title) for column in columns)
    lines = [
        Line(line(column.cell(column.value(row)) for column in columns), row.get(severity, "") if severity else "")
        for row in rows
    ]
    return Listing(header, lines)


def _day(key: str) -> Callable[[dict], str]:
    return lambda row: date_format(row[key], "Y-m-d") if row[key] else ""


def _minute(key: str) -> Callable[[dict], str]:
    return lambda row: date_format(row[key], "Y-m-d H:i") if row[key] else ""


def _label(key: str) -> Callable[[dict], str]:
    return lambda row: capfirst((row[key] or "").replace("_", " "))


def _score(key: str) -> Callable[[dict], str]:
    return lambda row: floatformat(row[key], 2) if row[key] is not None else ""


ALERTS = [
    Column("First seen", 16, _minute("first_seen_local")),
    Column("Severity", 8, _label("severity")),
    Column("Breach", 32, lambda row: row["breach__title"] or row["breach__name"]),
    Column("Identifier", 30, lambda row: row["item__masked"]),
    Column("Status", 12, _label("status")),
]
TITLE_CHANGES = [
    Column("Recorded", 10, _day("document__recorded_date")),
    Column("Property", 28, lambda row: row["property__address"]),
    Column("Document", 14, _label("document__document_type")),
    Column("Number", 16, lambda row: row["document__document_number"]),
    Column("Grantee", 22, lambda row: row["document__grantee"]),
    Column("Severity", 8, _label("severity")),
]
REMOVALS = [
    Column("Broker", 40, lambda row: row["broker__name"]),
    Column("Status", 18, _label("status")),
    Column("Submitted", 10, _day("submitted_at")),
    Column("Confirmed", 10, _day("confirmed_at")),
]
VOICE = [
    Column("Received", 16, _minute("created_at")),
    Column("Recording", 32, lambda row: row["sample__original_name"]),
    Column("Status", 8, _label("status")),
    Column("Verdict", 16, _label("verdict")),
    Column("Similarity", 10, _score("similarity"), right=True),
    Column("Synthetic", 10, _score("synthetic_score"), right=True),
]


def appendix(data: dict) -> list[tuple[str, Listing]]:
    """The appendix's tables of the report's data, as (title, listing), leaving out those without rows."""
    tables = [
        ("A. Dark-web exposures", ALERTS, data["darkwatch"].get("alerts"), "severity"),
        ("B. Title changes", TITLE_CHANGES, data["hometitle"].get("changes"), "severity"),
        ("C. Removal requests that moved this period", REMOVALS, data["removebrokers"].get("rows"), None),
        ("D. Voice analyses", VOICE, data["voiceprint"].get("rows"), None),
    ]
    return [(title, listing(columns, rows, severity=key)) for title, columns, rows, key in tables if rows]
