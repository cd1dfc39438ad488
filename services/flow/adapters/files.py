"""Reading a stored sell-through file into columns of text, and writing reports.

CSV: the encoding is decided from the first 64 KiB (UTF-8 with or without BOM, else
GB18030, a superset of GBK), then the stored chunks are decoded incrementally into a
UTF-8 scratch file that polars reads; a byte sequence later in the file that is not
valid in that encoding (a file pasted together from two editors) fails the upload with
the line where it happens. XLSX: the bounded reader of shared/tabular.py, row by row.
Neither holds the file twice in memory: the chunks stream from the database to scratch,
and only the parsed columns live in memory.

Reports are XLSX written by polars expressions straight into SpreadsheetML (inline
strings), which is what makes a million-row error report take seconds instead of
minutes; every cell is text, and text that a spreadsheet would take for a formula
(= + - @, tab, CR at the start) is prefixed with a quote (OWASP CSV injection)."""

from __future__ import annotations

import asyncio
import codecs
import csv
import io
import os
import tempfile
import zipfile
from collections.abc import Callable
from datetime import date, datetime, time

import polars as pl

from services.flow.domain.model import Encoding, FileFormat, Upload
from services.flow.usecases.ports import FlowUnitOfWork, SourceTable
from services.flow.usecases.uploads import SOURCE
from services.flow.usecases.validate import FileProblem
from shared.errors import InvalidArgument
from shared.safecells import safe_text_column
from shared.tabular import Limits, check_zip, xlsx_rows

SNIFF_BYTES = 64 * 1024
MAX_HEADER_CELL = 200
# A million-row sheet inflates to about half a gigabyte of XML.
MAX_INFLATED_BYTES = 2 * 1024 * 1024 * 1024


class StoredFileReader:
    def __init__(self, uow: Callable[[], FlowUnitOfWork], *, max_rows: int, max_columns: int,
                 scratch_dir: str | None = None) -> None:
        self.uow = uow
        self.max_rows = max_rows
        self.max_columns = max_columns
        self.scratch_dir = scratch_dir

    async def read(self, upload: Upload) -> SourceTable:
        with tempfile.TemporaryDirectory(dir=self.scratch_dir, prefix="flow-") as scratch:
            # openpyxl goes by the extension; the CSV reader does not mind it.
            raw = os.path.join(scratch, "source.xlsx")
            head = b""
            uow = self.uow()
            async with uow.read():
                with open(raw, "wb") as handle:  # noqa: ASYNC230 - local scratch
                    async for chunk in uow.blobs.chunks(upload.id, SOURCE):
                        if len(head) < SNIFF_BYTES:
                            head += chunk[:SNIFF_BYTES - len(head)]
                        handle.write(chunk)
            if is_xlsx(head, upload):
                return await asyncio.to_thread(self._xlsx, raw, upload)
            if head.startswith(b"\xd0\xcf\x11\xe0"):
                raise FileProblem("this is an old Excel .xls file: save it as .xlsx or CSV")
            return await asyncio.to_thread(self._csv, raw, head, upload, scratch)

    # ---- CSV ------------------------------------------------------------------------

    def _csv(self, raw: str, head: bytes, upload: Upload, scratch: str) -> SourceTable:
        encoding = _encoding(head, upload.encoding)
        text_path = os.path.join(scratch, "utf8.csv")
        decoder = codecs.getincrementaldecoder(
            "utf-8-sig" if encoding == Encoding.UTF8 else "gb18030")(errors="strict")
        lines = 1
        with open(raw, "rb") as source, open(text_path, "w", encoding="utf-8",
                                             newline="") as target:
            while block := source.read(1024 * 1024):
                try:
                    text = decoder.decode(block)
                except UnicodeDecodeError as exc:
                    line = lines + block[:exc.start].count(b"\n")
                    name = "UTF-8" if encoding == Encoding.UTF8 else "GB18030/GBK"
                    raise FileProblem(f"line {line} is not valid {name} text while the file "
                                      f"starts as {name}: the file mixes encodings (save it "
                                      "again as one encoding)") from None
                lines += block.count(b"\n")
                target.write(text.replace("\x00", ""))
            try:
                target.write(decoder.decode(b"", final=True))
            except UnicodeDecodeError:
                raise FileProblem("the file ends in the middle of a character: it is "
                                  "truncated") from None
        width = _csv_width(text_path, self.max_columns)
        if width == 0:
            raise FileProblem("the file has no header row")
        try:
            frame = pl.read_csv(
                text_path, has_header=False, infer_schema=False, truncate_ragged_lines=True,
                schema={f"c{i}": pl.Utf8 for i in range(width)}, quote_char='"',
                n_rows=self.max_rows + 1000)
        except pl.exceptions.PolarsError as exc:
            raise FileProblem(f"the CSV file cannot be parsed: {str(exc).splitlines()[0]}") \
                from None
        return _table(frame, upload.header_row, int(encoding), self.max_rows)

    # ---- XLSX -----------------------------------------------------------------------

    def _xlsx(self, raw: str, upload: Upload) -> SourceTable:
        """Rows as the sheet has them (shared/tabular.py: the zip measured before it is
        inflated, the declared dimension ignored), gaps between rows kept as blank rows
        so that row numbers stay the sheet's."""
        limits = Limits(max_rows=self.max_rows, max_columns=self.max_columns,
                        max_inflated_bytes=MAX_INFLATED_BYTES)
        columns: list[list] = []
        count = 0
        limit = self.max_rows + 1000
        try:
            with open(raw, "rb") as source:
                check_zip(source, limits)
                # Formulas as their text: a sell-through file must not carry any.
                for number, values in xlsx_rows(source, limits, upload.sheet_name,
                                                data_only=False):
                    if number > limit:
                        raise FileProblem(f"the sheet has more than {self.max_rows} rows")
                    for column in columns:
                        column.extend([None] * (number - 1 - count))
                    count = number - 1
                    while len(columns) < len(values):
                        columns.append([None] * count)
                    for index, column in enumerate(columns):
                        column.append(_cell(values[index]) if index < len(values) else None)
                    count += 1
        except InvalidArgument as exc:
            raise FileProblem(exc.violations[0].description if exc.violations
                              else exc.message) from None
        frame = pl.DataFrame({f"c{i}": column for i, column in enumerate(columns)},
                             schema={f"c{i}": pl.Utf8 for i in range(len(columns))})
        return _table(frame, upload.header_row, 0, self.max_rows, spreadsheet=True)


def is_xlsx(head: bytes, upload: Upload) -> bool:
    """The content decides (an XLSX is a zip archive), then the declared format, then
    the file name."""
    if head[:4] == b"PK\x03\x04":
        return True
    if upload.format != FileFormat.UNSPECIFIED:
        return upload.format == FileFormat.XLSX
    return upload.filename.lower().endswith(".xlsx")


def _encoding(head: bytes, declared: Encoding) -> Encoding:
    if declared in (Encoding.GBK, Encoding.GB18030):
        return Encoding.GB18030
    if declared == Encoding.UTF8:
        return Encoding.UTF8
    try:
        head.decode("utf-8")
        return Encoding.UTF8
    except UnicodeDecodeError as exc:
        # A multi-byte character cut by the sniffing window is still UTF-8.
        if exc.start >= len(head) - 3 and exc.reason == "unexpected end of data":
            return Encoding.UTF8
        if any(byte >= 0x80 for byte in head[:exc.start]):
            line = head[:exc.start].count(b"\n") + 1
            raise FileProblem(f"line {line} is not valid UTF-8 text while the lines before "
                              "it are: the file mixes encodings (save it again as one "
                              "encoding)") from None
    try:
        head.decode("gb18030")
    except UnicodeDecodeError as exc:
        if not (exc.start >= len(head) - 3):
            raise FileProblem("the file is neither UTF-8 nor GBK/GB18030 text (nor XLSX)") \
                from None
    return Encoding.GB18030


def _csv_width(path: str, max_columns: int) -> int:
    """The widest of the first lines (titles above the header may be narrower)."""
    width = 0
    with open(path, encoding="utf-8", newline="") as handle:
        sample = handle.read(256 * 1024)
    reader = csv.reader(io.StringIO(sample))
    try:
        for index, record in enumerate(reader):
            width = max(width, len(record))
            if index >= 200:
                break
    except csv.Error:
        pass
    if width > max_columns:
        raise FileProblem(f"the file has {width} columns; at most {max_columns}")
    return width


def _table(frame: pl.DataFrame, header_row: int, encoding: int, max_rows: int, *,
           spreadsheet: bool = False) -> SourceTable:
    frame = frame.with_row_index("row", offset=1).with_columns(pl.col("row").cast(pl.Int64))
    cells = [c for c in frame.columns if c != "row"]
    if header_row:
        position = header_row
    else:
        filled = frame.filter(pl.any_horizontal(
            [pl.col(c).is_not_null() & (pl.col(c).str.strip_chars() != "") for c in cells]))
        if filled.height == 0:
            raise FileProblem("the file is empty: it has no header row")
        position = filled.item(0, "row")
    if position > frame.height:
        raise FileProblem(f"header row {position} is beyond the end of the file")
    header_values = frame.row(position - 1)[1:]
    header = [(value or "").strip() for value in header_values]
    for index, text in enumerate(header):
        if len(text) > MAX_HEADER_CELL:
            raise FileProblem(f"header cell {index + 1} is {len(text)} characters long: this "
                              "is not a header row")
    data = frame.slice(position)
    if data.height > max_rows + 1000:
        raise FileProblem(f"the file has more than {max_rows} rows")
    return SourceTable(header, position, data, encoding, spreadsheet)


def _cell(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, datetime):
        if value.time() == time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


# ---- reports ---------------------------------------------------------------------

_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships'
    '+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
    'officedocument.spreadsheetml.worksheet+xml"/></Types>')
_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>')
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    'relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
_SHEET_HEAD = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
               '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
               '<sheetData>')
_SHEET_TAIL = "</sheetData></worksheet>"
# Characters XML 1.0 cannot carry at all.
_INVALID_XML = r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]"


def _xml_cell(expr: pl.Expr) -> pl.Expr:
    text = (safe_text_column(expr).str.replace_all(_INVALID_XML, "")
            .str.replace_all("&", "&amp;", literal=True)
            .str.replace_all("<", "&lt;", literal=True)
            .str.replace_all(">", "&gt;", literal=True))
    return pl.when(expr.is_null() | (expr.cast(pl.Utf8) == "")).then(pl.lit("<c/>")).otherwise(
        pl.lit('<c t="inlineStr"><is><t xml:space="preserve">') + text
        + pl.lit("</t></is></c>"))


class SheetWriter:
    """XLSX and CSV reports of text columns."""

    def xlsx(self, header: list[str], rows: pl.DataFrame) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
            archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
            archive.writestr("_rels/.rels", _RELS)
            archive.writestr("xl/workbook.xml", _WORKBOOK)
            archive.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
            with archive.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
                sheet.write(_SHEET_HEAD.encode())
                head = pl.DataFrame({f"h{i}": [text] for i, text in enumerate(header)},
                                    schema={f"h{i}": pl.Utf8 for i in range(len(header))})
                self._rows(sheet, head, first=1)
                for start in range(0, rows.height, 100_000):
                    self._rows(sheet, rows.slice(start, 100_000), first=start + 2)
                sheet.write(_SHEET_TAIL.encode())
        return buffer.getvalue()

    @staticmethod
    def _rows(sheet, frame: pl.DataFrame, first: int) -> None:
        if frame.height == 0 or frame.width == 0:
            return
        lines = frame.select(pl.concat_str(
            [pl.lit('<row r="'), (pl.int_range(pl.len()) + first).cast(pl.Utf8), pl.lit('">'),
             *[_xml_cell(pl.col(name)) for name in frame.columns], pl.lit("</row>")]))
        sheet.write(lines.to_series().str.join("").item().encode())

    def csv(self, header: list[str], rows: pl.DataFrame) -> bytes:
        safe = rows.select([safe_text_column(pl.col(name)).alias(f"c{i}")
                            for i, name in enumerate(rows.columns)])
        names = list(header) + [""] * (safe.width - len(header))
        safe.columns = [f"{i}:{name}" for i, name in enumerate(names[:safe.width])]
        buffer = io.BytesIO()
        safe.write_csv(buffer, include_bom=True, include_header=False)
        head = io.StringIO()
        csv.writer(head).writerow(names[:safe.width])
        return "\ufeff".encode() + head.getvalue().encode() + buffer.getvalue().removeprefix(
            "\ufeff".encode())
