"""Authorization letters (授权书) as XLSX (openpyxl) or PDF. The PDF is written by hand
with the standard Adobe-GB1 CJK font (STSong-Light), which every PDF reader provides, so
no font file is embedded and no PDF library is needed."""

from __future__ import annotations

import io

from services.registration.domain.authorizations import Letter
from shared.safecells import safe_cell


def to_xlsx(letter: Letter) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    sheet = book.active
    sheet.title = "授权书"
    sheet["A1"] = "产品销售授权书 Authorization Letter"
    sheet["A1"].font = Font(bold=True, size=14)
    for index, (label, value) in enumerate(letter.lines(), start=3):
        sheet.cell(row=index, column=1, value=label).font = Font(bold=True)
        # Names and departments are typed by dealers: never a formula.
        sheet.cell(row=index, column=2, value=safe_cell(value))
    sheet.column_dimensions["A"].width = 28
    sheet.column_dimensions["B"].width = 60
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def _hex(text: str) -> str:
    return "<" + text.encode("utf-16-be").hex().upper() + ">"


def to_pdf(letter: Letter) -> bytes:
    title = _hex("产品销售授权书 Authorization Letter")
    commands = ["BT", "/F1 18 Tf", "72 770 Td", f"{title} Tj", "/F1 11 Tf"]
    for label, value in letter.lines():
        commands += ["0 -28 Td", f"{_hex(label + '：' + value)} Tj"]
    closing = _hex("兹授权上述经销商在有效期内向上述医院销售上述产品。")
    commands += ["0 -48 Td", f"{closing} Tj", "ET"]
    stream = "\n".join(commands).encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
        b"/Resources << /Font << /F1 4 0 R >> >> /Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type0 /BaseFont /STSong-Light /Encoding /UniGB-UTF16-H "
        b"/DescendantFonts [6 0 R] >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /CIDFontType0 /BaseFont /STSong-Light "
        b"/CIDSystemInfo << /Registry (Adobe) /Ordering (GB1) /Supplement 4 >> "
        b"/FontDescriptor 7 0 R >>",
        b"<< /Type /FontDescriptor /FontName /STSong-Light /Flags 6 "
        b"/FontBBox [-25 -254 1000 880] /ItalicAngle 0 /Ascent 880 /Descent -120 "
        b"/CapHeight 880 /StemV 93 >>",
    ]
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
              .encode())
    return out.getvalue()
