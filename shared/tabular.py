"""Reading an uploaded CSV or XLSX file into rows of strings keyed by header, for every
bulk import (dealers, customers, leads, products, targets; flow's sell-through files use
the XLSX part).

Files come from spreadsheets people keep by hand: CSV saved by Excel on a Chinese Windows
(GBK/GB18030) or elsewhere (UTF-8 with or without BOM, UTF-16 with BOM from "Unicode
text", bare CR line endings from old Mac Excel), or XLSX straight from Excel or WPS. Each
row keeps its number as the user sees it in the file (the header is row 1, blank lines
count), so an error report points at the right line.

Files also come from people who want to hurt the service, so nothing a file declares is
trusted: an XLSX's zip members are measured (declared sizes, which zipfile enforces while
inflating, and compression ratio) before anything is inflated; the sheet's declared
dimension is ignored and rows are built from the cells actually present; rows, blank
rows, columns and cell length are capped, each with an error naming the limit and the
row/column; XML is parsed by defusedxml (no entity expansion). ``read_table_isolated``
parses in a child process with a memory and CPU budget, killed when the caller is
cancelled (the client went away), so a file can cost the service neither its event loop
nor its memory."""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import csv
import io
import os
import pickle
import sys
import weakref
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from qudao.common.v1 import files_pb2

from shared.errors import InvalidArgument

MAX_ROWS = 100_000
# Parsing processes at once per service process (each may use its whole memory budget);
# more imports wait their turn.
MAX_PARSERS = 2
_parsers: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


@dataclass(frozen=True)
class Limits:
    """What one import file may cost. The defaults fit every import (at most 100,000 rows
    of a few dozen columns) with room to spare."""
    max_rows: int = MAX_ROWS
    max_columns: int = 256
    # Excel's own limit for the text of a cell.
    max_cell_chars: int = 32_767
    # Formatted but empty rows at the end of a sheet are common; a million of them is not.
    max_blank_rows: int = 10_000
    # All zip members inflated together, and how much any one may inflate per byte
    # (spreadsheet XML compresses 5–30×; a deflate bomb ~1000×).
    max_inflated_bytes: int = 256 * 1024 * 1024
    max_ratio: int = 200
    # The parsing process: address space and CPU seconds.
    memory_bytes: int = 1024 * 1024 * 1024
    cpu_seconds: int = 120


@dataclass(frozen=True)
class Table:
    header: list[str]
    # (row number in the file, header → stripped value); blank rows are left out.
    rows: list[tuple[int, dict[str, str]]]
    # The parsing process's peak resident memory in bytes, when parsed in one.
    peak_rss: int = field(default=0, compare=False)

    def column(self, *names: str) -> str | None:
        """The first of ``names`` (a field's accepted headers) the file has."""
        present = set(self.header)
        return next((name for name in names if name in present), None)


def is_xlsx(content: bytes, filename: str, file_format: int) -> bool:
    if file_format == files_pb2.FILE_FORMAT_XLSX:
        return True
    if file_format == files_pb2.FILE_FORMAT_CSV:
        return False
    return content[:4] == b"PK\x03\x04" or filename.lower().endswith(".xlsx")


def read_table(content: bytes, filename: str = "", file_format: int = 0, encoding: int = 0,
               max_rows: int = MAX_ROWS, limits: Limits | None = None) -> Table:
    """The file's header and rows, every limit checked (in this process: tests, small
    files; services use ``read_table_isolated``)."""
    limits = limits or Limits(max_rows=max_rows)
    if not content:
        raise InvalidArgument.field("content", "the file is empty")
    if is_xlsx(content, filename, file_format):
        source = io.BytesIO(content)
        check_zip(source, limits)
        records = xlsx_rows(source, limits)
    else:
        records = csv_rows(decode_text(content, encoding), limits)
    header: list[str] | None = None
    rows: list[tuple[int, dict[str, str]]] = []
    for number, cells in bounded_rows(records, limits):
        if header is None:
            header = cells
            continue
        if len(rows) == limits.max_rows:
            raise InvalidArgument.field(
                "content", f"at most {limits.max_rows} rows per file (row {number} is one "
                "too many)")
        rows.append((number, {name: cells[index] if index < len(cells) else ""
                              for index, name in enumerate(header) if name}))
    if header is None:
        raise InvalidArgument.field("content", "the file has no header row")
    return Table(header, rows)


def bounded_rows(records: Iterator[tuple[int, list]], limits: Limits
                 ) -> Iterator[tuple[int, list[str]]]:
    """Non-blank rows as stripped text, with the blank-row, column and cell-length caps."""
    blank = 0
    for number, values in records:
        cells = [("" if value is None else _text(value)).strip() for value in values]
        while cells and not cells[-1]:
            cells.pop()
        if not cells:
            blank += 1
            if blank > limits.max_blank_rows:
                raise InvalidArgument.field(
                    "content", f"row {number}: more than {limits.max_blank_rows} blank rows; "
                    "delete the empty rows (or the formatting) below the data")
            continue
        if len(cells) > limits.max_columns:
            raise InvalidArgument.field(
                "content", f"row {number} has {len(cells)} columns; at most "
                f"{limits.max_columns}")
        for index, cell in enumerate(cells):
            if len(cell) > limits.max_cell_chars:
                raise InvalidArgument.field(
                    "content", f"row {number}, column {index + 1}: the cell has {len(cell)} "
                    f"characters; at most {limits.max_cell_chars}")
        yield number, cells


# ---- CSV ------------------------------------------------------------------------------

def decode_text(content: bytes, encoding: int = 0) -> str:
    """The file as text: a UTF-16 or UTF-8 byte-order mark decides, then the declared
    encoding, then UTF-8 if it decodes, else GB18030 (a superset of GBK)."""
    if content.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return content.decode("utf-16")
        except UnicodeDecodeError:
            raise InvalidArgument.field(
                "encoding", "the file starts as UTF-16 but is not valid UTF-16 text") from None
    if encoding in (files_pb2.TEXT_ENCODING_GBK, files_pb2.TEXT_ENCODING_GB18030):
        try:
            return content.decode("gb18030")
        except UnicodeDecodeError:
            raise InvalidArgument.field("encoding", "the file is not GBK/GB18030 text") from None
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError:
        if encoding == files_pb2.TEXT_ENCODING_UTF8:
            raise InvalidArgument.field("encoding", "the file is not valid UTF-8") from None
    if b"\x00" in content[:4096]:
        raise InvalidArgument.field(
            "encoding", "the file looks like UTF-16 without a byte-order mark: save it as "
            "UTF-8 CSV (or UTF-16 with BOM)")
    try:
        return content.decode("gb18030")
    except UnicodeDecodeError:
        raise InvalidArgument.field(
            "encoding", "the file is neither UTF-8, UTF-16 nor GB18030 text") from None


def csv_rows(text: str, limits: Limits) -> Iterator[tuple[int, list[str]]]:
    # newline="" lets the csv module see \r\n, \n and a bare \r (old Mac Excel) as line
    # ends, and keeps line breaks inside quoted cells.
    reader = csv.reader(io.StringIO(text, newline=""))
    number = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise InvalidArgument.field(
                    "content", f"line {reader.line_num}: a cell has more than "
                    f"{limits.max_cell_chars} characters") from None
            raise InvalidArgument.field(
                "content", f"line {reader.line_num} is not valid CSV: {exc}") from None
        number += 1
        yield number, record


# ---- XLSX -----------------------------------------------------------------------------

def check_zip(source, limits: Limits) -> None:
    """Refuse an archive whose members would inflate past the limits, before inflating
    any. zipfile stops a member at its declared size (a lying size fails its CRC), so the
    declared sizes bound what openpyxl can inflate."""
    try:
        with zipfile.ZipFile(source) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidArgument.field("content", f"not a readable XLSX file: {exc}") from None
    total = 0
    for member in members:
        total += member.file_size
        if total > limits.max_inflated_bytes:
            raise InvalidArgument.field(
                "content", f"the XLSX file inflates to more than {limits.max_inflated_bytes} "
                f"bytes (member {member.filename!r} declares {member.file_size})")
        if member.file_size > 1024 * 1024 and (
                member.file_size > limits.max_ratio * max(member.compress_size, 1)):
            raise InvalidArgument.field(
                "content", f"the XLSX member {member.filename!r} inflates "
                f"{member.file_size // max(member.compress_size, 1)}× (at most "
                f"{limits.max_ratio}×): this is a zip bomb, not a spreadsheet")
    if hasattr(source, "seek"):
        source.seek(0)


def xlsx_rows(source, limits: Limits, sheet_name: str = "", *, data_only: bool = True
              ) -> Iterator[tuple[int, list]]:
    """(row number, values) of the cells actually present in a sheet (the first unless
    named), never padded to the sheet's declared dimension. Call ``check_zip`` first.
    ``data_only=False`` gives a formula's text ("=TODAY()") instead of its cached value.

    openpyxl's own read-only worksheet is not used: it scans the whole sheet for its
    dimension when the workbook opens and pads every row to that dimension (a declared
    A1:XFD1048576 costs minutes), so the workbook's parts are read with its reader and
    the sheet's cells placed here."""
    from openpyxl.reader.excel import ExcelReader
    from openpyxl.styles.stylesheet import apply_stylesheet
    from openpyxl.worksheet._reader import WorkSheetParser

    reader = None
    try:
        reader = ExcelReader(source, read_only=True, data_only=data_only)
        reader.read_manifest()
        reader.read_strings()
        reader.read_workbook()
        apply_stylesheet(reader.archive, reader.wb)
        sheets = [(sheet.name, rel.target) for sheet, rel in reader.parser.find_sheets()
                  if "chartsheet" not in rel.Type]
    except Exception as exc:  # openpyxl raises many kinds for a broken file
        if reader is not None:
            reader.archive.close()
        raise InvalidArgument.field("content", _unreadable(exc)) from None
    try:
        if not sheets:
            raise InvalidArgument.field("content", "the workbook has no worksheet")
        if sheet_name:
            targets = dict(sheets)
            if sheet_name not in targets:
                raise InvalidArgument.field(
                    "sheet_name", f"the workbook has no sheet {sheet_name!r} (sheets: "
                    f"{', '.join(targets)})")
            target = targets[sheet_name]
        else:
            target = sheets[0][1]
        book = reader.wb
        number = 0
        try:
            with reader.archive.open(target) as xml:
                parser = WorkSheetParser(xml, reader.shared_strings, data_only=data_only,
                                         epoch=book.epoch, date_formats=book._date_formats,
                                         timedelta_formats=book._timedelta_formats)
                for number, cells in parser.parse():
                    values: list = []
                    for cell in cells:
                        if cell["value"] is None:
                            continue
                        column = cell["column"]
                        if column > limits.max_columns:
                            raise InvalidArgument.field(
                                "content", f"row {number} has a value in column {column}; "
                                f"at most {limits.max_columns} columns")
                        value = cell["value"]
                        if isinstance(value, str) and len(value) > limits.max_cell_chars:
                            raise InvalidArgument.field(
                                "content", f"row {number}, column {column}: the cell has "
                                f"{len(value)} characters; at most {limits.max_cell_chars}")
                        values.extend([None] * (column - len(values)))
                        values[column - 1] = value
                    yield number, values
        except InvalidArgument:
            raise
        except Exception as exc:
            raise InvalidArgument.field("content", _unreadable(exc, number)) from None
    finally:
        reader.archive.close()


def _unreadable(exc: BaseException, row: int | None = None) -> str:
    """Why openpyxl could not read a file, from the innermost cause (openpyxl wraps
    parser errors in a ValueError that names no reason)."""
    causes = [exc]
    while (inner := causes[-1].__cause__ or causes[-1].__context__) and len(causes) < 10:
        causes.append(inner)
    for cause in causes:
        if type(cause).__module__.startswith("defusedxml"):
            return ("the XLSX file declares XML entities or a DTD, which spreadsheets never "
                    f"need (refused: {type(cause).__name__})")
    root = causes[-1]
    if row is not None:
        return f"the XLSX file is damaged after row {row} ({type(root).__name__}: " \
            f"{str(root)[:200]})"
    return f"not a readable XLSX file ({type(root).__name__}: {str(root)[:200]})"


def _text(value) -> str:
    """A cell as the user sees it: whole numbers without ".0", dates as ISO dates."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    from datetime import datetime, time
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(sep=" ")
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


# ---- parsing in a child process ---------------------------------------------------------

async def read_table_isolated(content: bytes, filename: str = "", file_format: int = 0,
                              encoding: int = 0, max_rows: int = MAX_ROWS,
                              limits: Limits | None = None,
                              then: Callable[[Table], Any] | None = None) -> Any:
    """``read_table`` in a child process with ``limits.memory_bytes`` of address space and
    ``limits.cpu_seconds`` of CPU: the caller's event loop keeps serving, and what the
    file costs is freed when the child exits. Cancelling the caller kills the child.

    With ``then`` (a picklable function of the table: a module-level function or a
    ``functools.partial`` of one), the child also applies it and answers its result
    instead of the table: checking 100,000 rows then costs the service neither its
    event loop nor its GIL."""
    limits = limits or Limits(max_rows=max_rows)
    if not content:
        raise InvalidArgument.field("content", "the file is empty")
    loop = asyncio.get_running_loop()
    if loop not in _parsers:
        _parsers[loop] = asyncio.Semaphore(MAX_PARSERS)
    async with _parsers[loop]:
        return await _parse_in_child(content, filename, file_format, encoding, limits, then)


async def _parse_in_child(content: bytes, filename: str, file_format: int, encoding: int,
                          limits: Limits, then: Callable[[Table], Any] | None) -> Any:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "from shared.tabular import _child; _child()",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env={**os.environ, "PYTHONPATH": os.pathsep.join(
            path for path in sys.path if path)})
    try:
        request = pickle.dumps((content, filename, file_format, encoding, limits, then))
        output, errors = await child.communicate(request)
    except BaseException:
        with contextlib.suppress(ProcessLookupError):
            child.kill()
        await child.wait()
        raise
    if child.returncode != 0 or not output:
        raise InvalidArgument.field("content", _budget_exceeded(child.returncode, errors,
                                                                limits))
    # Our own child's answer; 100,000 rows take a moment to unpickle, off the loop.
    outcome = await asyncio.to_thread(pickle.loads, output)
    if outcome[0] == "error":
        _, message, violations = outcome
        raise InvalidArgument(message, violations=violations)
    if outcome[0] == "then":
        return outcome[1]
    _, header, rows, peak = outcome
    return Table(header, rows, peak)


def _budget_exceeded(returncode: int | None, errors: bytes, limits: Limits) -> str:
    import signal

    if returncode in (-signal.SIGXCPU, -signal.SIGKILL):
        return f"reading the file took more than {limits.cpu_seconds} CPU seconds"
    if b"MemoryError" in errors:
        return (f"reading the file needs more than {limits.memory_bytes // (1024 * 1024)} "
                "MiB of memory")
    last = errors.decode(errors="replace").strip().splitlines()[-1:] or ["no answer"]
    return f"the file could not be read ({last[0][:200]})"


def _resident_high_water() -> int:
    """This process's peak resident memory in bytes. Not getrusage's ru_maxrss: Linux
    carries the forking parent's high-water mark across exec into it, so a child forked
    from a large service would report the service's size."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _child() -> None:
    """The parsing process: limits first, then the file from stdin, the answer (or the
    error) pickled to stdout."""
    import resource

    content, filename, file_format, encoding, limits, then = pickle.load(sys.stdin.buffer)
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
    try:
        table = read_table(content, filename, file_format, encoding, limits=limits)
        del content
        if then is not None:
            answer = ("then", then(table))
        else:
            answer = ("ok", table.header, table.rows, _resident_high_water())
    except InvalidArgument as exc:
        answer = ("error", exc.message, exc.violations)
    pickle.dump(answer, sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)
    sys.stdout.flush()
