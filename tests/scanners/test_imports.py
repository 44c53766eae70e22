import io
import os

import pytest

from scanners import imports
from scanners.darkwatch.models import BreachRecord
from scanners.darkwatch.services import breaches_import

CSV = "breach,kind,identifier\n" + "".join(f"Leak,email,user{n}@example.com\n" for n in range(25))


def numbered(text):
    return imports.records(io.StringIO(text), "csv", ["breach"])


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_batches_are_written_by_a_second_process_in_order():
    importer = os.getpid()
    sizes = []

    def write(batch):
        sizes.append(len(batch))  # the writer's own memory: it keeps state across batches
        assert os.getpid() != importer
        return sizes[-1] * 100 + len(sizes)

    report = imports.import_records(numbered(CSV), parse=lambda r: r, write=write, batch_size=10)
    assert report.read == 25
    assert report.added == (10 * 100 + 1) + (10 * 100 + 2) + (5 * 100 + 3)
    assert breaches_import(io.StringIO(CSV), "csv", batch_size=10).added == 25
    assert BreachRecord.objects.count() == 25


@pytest.mark.django_db(transaction=True)
def test_a_failed_write_stops_the_import_with_its_error():
    def write(batch):
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        imports.import_records(numbered(CSV), parse=lambda r: r, write=write, batch_size=10)


def test_a_csv_line_with_too_many_values_is_rejected():
    report = imports.import_records(
        numbered("breach,kind,identifier\nA,email,x@example.com,extra\n"), parse=lambda r: r, write=len, batch_size=10
    )
    assert report.rejected == [(2, "1 more value(s) than the header has columns")]


def test_an_unknown_format_is_refused():
    from pathlib import Path

    with pytest.raises(imports.ImportFileInvalid, match="cannot tell the format"):
        imports.format_of(Path("breaches.xlsx"))
