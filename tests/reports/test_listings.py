import datetime as dt

import pytest

from reports.listings import ALERTS, LINE_WIDTH, REMOVALS, TITLE_CHANGES, VOICE, Column, appendix, listing


def test_columns_line_up_and_long_values_are_cut_with_an_ellipsis():
    rows = [
        {"name": "short", "n": 3},
        {"name": "a name far longer than its column", "n": 12345},
    ]
    table = listing(
        [Column("Name", 10, lambda row: row["name"]), Column("N", 5, lambda row: row["n"], right=True)], rows
    )

    assert table.header == "Name" + " " * 12 + "N"
    assert [line.text for line in table.lines] == ["short" + " " * 11 + "3", "a name fa…" + "  " + "12345"]


def test_missing_values_show_a_dash_and_severity_colours_the_line():
    table = listing([Column("When", 10, lambda row: row["when"])], [{"when": None, "sev": "high"}], severity="sev")
    assert (table.lines[0].text, table.lines[0].severity) == ("–", "high")


def test_every_appendix_table_fits_the_page():
    for columns in (ALERTS, TITLE_CHANGES, REMOVALS, VOICE):
        assert sum(column.width for column in columns) + 2 * (len(columns) - 1) <= LINE_WIDTH
    with pytest.raises(ValueError, match="wider than"):
        listing([Column("Wide", LINE_WIDTH + 1, str)], [])


def test_the_appendix_lists_only_products_with_rows():
    data = {
        "darkwatch": {
            "alerts": [
                {
                    "first_seen_local": dt.datetime(2026, 10, 2, 9, 30, tzinfo=dt.UTC),
                    "severity": "critical",
                    "breach__title": "",
                    "breach__name": "MegaCorp2026",
                    "item__masked": "j***@example.com",
                    "status": "new",
                }
            ]
        },
        "hometitle": {"changes": []},
        "removebrokers": {"rows": []},
        "voiceprint": {"rows": []},
    }
    [(title, table)] = appendix(data)
    assert title == "A. Dark-web exposures"
    assert table.lines[0].text.split() == ["2026-10-02", "09:30", "Critical", "MegaCorp2026", "j***@example.com", "New"]
