"""Files HQ hands to dealers (notice attachments, library materials): which types, how
large, and whether the content is what it claims to be. Pure Python."""

from __future__ import annotations

from shared.errors import FieldViolation

# Sent base64 in one JSON body, which the gateway takes up to 10 MiB.
FILE_MAX_BYTES = 5 * 1024 * 1024
FILENAME_MAX = 200

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PPTX = "application/vnd.openxmlformats-officedocument.presentationml.presentation"
# What may be attached, each with the bytes its content starts with: a file is taken for
# what its content says, not for what its name or declared type claim.
FILE_TYPES: dict[str, tuple[tuple[str, ...], bytes | None]] = {
    "application/pdf": ((".pdf",), b"%PDF-"),
    "image/png": ((".png",), b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": ((".jpg", ".jpeg"), b"\xff\xd8\xff"),
    XLSX: ((".xlsx",), b"PK\x03\x04"),
    DOCX: ((".docx",), b"PK\x03\x04"),
    PPTX: ((".pptx",), b"PK\x03\x04"),
    "text/plain": ((".txt",), None),
}


def _wrong_type(filename: str, content_type: str, content: bytes) -> str | None:
    """Why the file is refused, or None."""
    allowed = FILE_TYPES.get(content_type)
    if allowed is None:
        return f"type {content_type or '(none)'} is not allowed: PDF, PNG, JPEG, XLSX, " \
               "DOCX, PPTX or plain text"
    extensions, magic = allowed
    if not filename.lower().endswith(extensions):
        return f"a {content_type} file's name ends with {' or '.join(extensions)}"
    if magic is not None and not content.startswith(magic):
        return f"the content is not {content_type}"
    if magic is None:
        try:
            content.decode("utf-8")
        except UnicodeDecodeError:
            return "plain text must be UTF-8"
    return None


def file_violations(field: str, filename: str, content_type: str,
                    content: bytes) -> list[FieldViolation]:
    """What is wrong with a file given in ``field`` (its name, size, type and content)."""
    problems = []
    if not filename.strip() or len(filename) > FILENAME_MAX:
        problems.append(FieldViolation(f"{field}.filename", f"1 to {FILENAME_MAX} characters"))
    if not content:
        problems.append(FieldViolation(f"{field}.content", "is empty"))
    elif len(content) > FILE_MAX_BYTES:
        problems.append(FieldViolation(
            f"{field}.content", f"larger than {FILE_MAX_BYTES // (1024 * 1024)} MiB"))
    else:
        wrong = _wrong_type(filename, content_type, content)
        if wrong:
            problems.append(FieldViolation(f"{field}.content_type", wrong))
    return problems
