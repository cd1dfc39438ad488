"""Reports as XLSX (openpyxl). Every cell is written as text, so nothing in a report is
ever taken for a number, a date or a formula by the writer itself."""

from __future__ import annotations

import io

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell


class XlsxSheets:
    def xlsx(self, header: list[str], rows: list[list[str]]) -> bytes:
        book = Workbook(write_only=True)
        sheet = book.create_sheet()
        for values in [header, *rows]:
            cells = []
            for value in values:
                cell = WriteOnlyCell(sheet, value=value)
                cell.data_type = "s"
                cells.append(cell)
            sheet.append(cells)
        buffer = io.BytesIO()
        book.save(buffer)
        return buffer.getvalue()
