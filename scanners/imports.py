"""Loading a provider's data set from a file: the rules `import_breaches` and `import_recordings` share.

A file is CSV (with a header row) or JSON Lines (one object per line). It is read as a
stream and written in batches, so a file of millions of lines never sits in memory. A line
that cannot be used is rejected with its line number and the reason, and the good lines
around it are kept. Writes skip whatever is already stored (unique constraints), so
importing the same file twice adds nothing the second time.
"""

from __future__ import annotations

import contextlib
import csv
import json
import multiprocessing
import os
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from django.db import connection

FORMATS = ("csv", "jsonl")
# Rejected lines are all counted; this many are kept with their reasons for the report.
REJECTED_KEPT = 1000
# A reason quotes a value in at most SHOWN_CHARS characters, and is at most REASON_CHARS long.
SHOWN_CHARS = 40
REASON_CHARS = 200
# What no database column here can hold (PostgreSQL refuses NUL; UTF-8 has no lone surrogates).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class ImportFileInvalid(ValueError):
    """The file as a whole cannot be imported (unknown format, missing CSV columns)."""


class LineRejected(ValueError):
    """One line cannot be imported; the message says why."""


@dataclass
class ImportReport:
    read: int = 0
    added: int = 0
    rejected_count: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason), the first REJECTED_KEPT
    seconds: float = 0.0

    @property
    def duplicates(self) -> int:
        """Good lines that added nothing: already stored, or repeated in the file."""
        return self.read - self.rejected_count - self.added

    def reject(self, line: int, reason: str) -> None:
        self.rejected_count += 1
        if len(self.rejected) < REJECTED_KEPT:
            self.rejected.append((line, reason if len(reason) <= REASON_CHARS else reason[: REASON_CHARS - 3] + "..."))


def format_of(path: Path, given: str | None = None) -> str:
    """The file's format: `given`, or read from the extension (.csv, .jsonl, .ndjson)."""
    fmt = given or {".csv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl"}.get(path.suffix.lower())
    if fmt not in FORMATS:
        raise ImportFileInvalid(f"cannot tell the format of {path.name}; name it .csv or .jsonl, or pass --format")
    return fmt


def records(stream: IO, fmt: str, required: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | str]]:
    """(line number, record) for each line, or (line number, reason) for a line that is not a record.

    The stream may be binary (the commands open files so): each line is decoded on its own, so
    a line that is not UTF-8 is rejected by its number and the lines after it are still read.
    """
    required = list(required)
    undecodable: list[tuple[int, str]] = []
    lines = _text_lines(stream, undecodable)
    if fmt == "csv":
        reader = csv.reader(lines)
        try:
            header = [name.strip() for name in next(reader, [])]
        except csv.Error as exc:
            raise ImportFileInvalid(f"the CSV header cannot be read: {exc}") from None
        missing = [name for name in required if name not in header]
        if missing:
            raise ImportFileInvalid(f"the CSV header lacks column(s): {', '.join(missing)}")
        width = len(header)
        while True:  # csv.DictReader's work, a third cheaper for millions of lines
            first = reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:  # e.g. a field over csv's 131,072 characters: this record only
                yield from _drain(undecodable)
                span = f" (the record runs to line {reader.line_num})" if reader.line_num > first else ""
                yield first, f"not a CSV record: {exc}{span}"
                continue
            yield from _drain(undecodable)
            if len(row) > width:
                yield first, f"{len(row) - width} more value(s) than the header has columns"
            elif row:
                yield first, dict(zip(header, row, strict=False))
        yield from _drain(undecodable)
        return
    for number, line in enumerate(lines, start=1):
        yield from _drain(undecodable)
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            yield number, f"not valid JSON: {exc}"
            continue
        except RecursionError:
            yield number, "not valid JSON: nested too deeply"
            continue
        yield number, record if isinstance(record, dict) else f"expected a JSON object, got {json_type(record)}"
    yield from _drain(undecodable)


def _text_lines(stream: IO, undecodable: list[tuple[int, str]]) -> Iterator[str]:
    """The stream's lines as text. A binary line that is not UTF-8 is noted in `undecodable` and
    passed on as an empty line, so parsers skip it and keep counting lines."""
    for number, line in enumerate(stream, start=1):
        if line.__class__ is bytes:
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                undecodable.append(
                    (number, f"not UTF-8 text (byte {exc.start + 1} of the line is {line[exc.start]:#04x})")
                )
                line = "\n"
        if number == 1:
            line = line.removeprefix("\ufeff")  # a byte-order mark some editors write
        yield line


def _drain(pending: list[tuple[int, str]]) -> Iterator[tuple[int, str]]:
    while pending:
        yield pending.pop(0)


def json_type(value: Any) -> str:
    """How a reason names a JSON value's type: "a list", "an object", "a number"..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return "text"


def shown(value: Any) -> str:
    """A value as a reason quotes it: its repr, cut short (a rejected value may be 100 KB)."""
    text = repr(value)
    return text if len(text) <= SHOWN_CHARS else f"{text[: SHOWN_CHARS - 4]}...{text[-1]}"


def import_records(
    numbered: Iterable[tuple[int, dict[str, Any] | str]],
    *,
    parse: Callable[[dict[str, Any]], Any],
    write: Callable[[list[Any]], int],
    batch_size: int,
    progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Parse each record (LineRejected rejects it), write good ones in batches; `write` returns how many it added.

    Outside a transaction, a batch is written by a second process (with its own database
    connection) while the next one is parsed: the import takes the longer of the two rather
    than their sum. Inside the caller's transaction everything stays on its connection, so
    the caller sees (and can roll back) the rows. `write` may keep state across batches, but
    only what arrives in the batches themselves: it runs in the other process.
    """
    report = ImportReport()
    try:
        return _import(report, numbered, parse=parse, write=write, batch_size=batch_size, progress=progress)
    except Exception as exc:
        # Whoever reports the failure can still say how far the import got.
        exc.import_report = report
        raise


def _import(report: ImportReport, numbered, *, parse, write, batch_size, progress) -> ImportReport:
    started = time.perf_counter()
    batch: list[Any] = []
    with _BatchWriter(write, overlapped=not connection.in_atomic_block) as writer:

        def written(added: int) -> None:
            report.added += added
            report.seconds = time.perf_counter() - started
            if progress:
                progress(report)

        for number, record in numbered:
            report.read += 1
            if isinstance(record, str):
                report.reject(number, record)
                continue
            try:
                batch.append(parse(record))
            except LineRejected as exc:
                report.reject(number, str(exc))
                continue
            if len(batch) >= batch_size:
                writer.submit(batch, written)
                batch = []
        writer.submit(batch, written)
    report.seconds = time.perf_counter() - started
    return report


class _BatchWriter:
    """Writes batches in order, one in flight; a failed write stops the import at the next
    batch (or at the end) with its own exception.

    Overlapped, the writes happen in a forked process with a database connection of its
    own, so parsing and writing share neither a connection nor the GIL: a thread was tried
    first, and the two halves spent their time waiting for each other's interpreter lock.
    """

    def __init__(self, write: Callable[[list[Any]], int], *, overlapped: bool):
        self._write = write
        self._process = None
        self._pending: Callable[[int], None] | None = None
        if overlapped and "fork" in multiprocessing.get_all_start_methods():
            self._pipe, child_end = multiprocessing.Pipe()
            self._process = multiprocessing.get_context("fork").Process(
                target=_write_batches, args=(child_end, write), name="import-writer", daemon=True
            )
            self._process.start()
            child_end.close()

    def submit(self, batch: list[Any], done: Callable[[int], None]) -> None:
        if self._process is None:
            done(self._write(batch))
            return
        self._wait()
        self._pipe.send(batch)
        self._pending = done

    def _wait(self) -> None:
        if self._pending is not None:
            done, self._pending = self._pending, None
            try:
                outcome, value = self._pipe.recv()
            except EOFError:
                raise RuntimeError(f"the import's writer process died (exit code {self._process.exitcode})") from None
            if outcome == "error":
                raise value
            done(value)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        if self._process is None:
            return
        try:
            if exc_info[0] is None:
                self._wait()
        finally:
            with contextlib.suppress(OSError):
                self._pipe.send(None)
            self._process.join()
            self._pipe.close()


def _write_batches(pipe, write: Callable[[list[Any]], int]) -> None:
    """The writer process: write each batch that arrives, answer ("ok", added) or ("error", exception)."""
    from jobs.worker import set_aside_inherited_db_connections

    set_aside_inherited_db_connections()
    try:
        while (batch := pipe.recv()) is not None:
            try:
                pipe.send(("ok", write(batch)))
            except Exception as exc:  # every failure goes back to the importing process
                try:
                    pipe.send(("error", exc))
                except Exception:  # an exception that cannot be pickled
                    pipe.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
                break
    finally:
        connection.close()  # its own, opened by the first write
        # Leave without running the parent's exit handlers or finalisers.
        os._exit(0)


def field_text(
    record: dict[str, Any], name: str, *, required: bool = True, limit: int = 300, number: bool = False
) -> str:
    """A record's field as stripped text; LineRejected when required and empty, too long, not text
    (JSON Lines may carry whole numbers for text, and any number where `number` is set), or
    holding what the database cannot store."""
    value = record.get(name)
    if value is None:
        value = ""
    elif value.__class__ is not str:  # CSV always gives text
        if isinstance(value, bool) or not isinstance(value, int | float) or (isinstance(value, float) and not number):
            raise LineRejected(f"{name} must be text, not {json_type(value)}")
        value = str(value)
    value = value.strip()
    if required and not value:
        raise LineRejected(f"{name} is empty")
    if len(value) > limit:
        raise LineRejected(f"{name} is longer than {limit} characters")
    if _UNSTORABLE.search(value):
        raise LineRejected(f"{name} holds a NUL or a lone surrogate, which cannot be stored")
    return value
