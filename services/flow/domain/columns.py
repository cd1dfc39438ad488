"""The columns of a sell-through file and how a file's headers map onto them: an
explicit mapping sent with the upload, then the dealer's saved mapping, then the
known Chinese and English header names. Pure Python, no I/O."""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


class FlowColumn(enum.StrEnum):
    SOLD_ON = "sold_on"
    CUSTOMER_NAME = "customer_name"
    DEPARTMENT = "department"
    PRODUCT_CODE = "product_code"
    PRODUCT_NAME = "product_name"
    SPEC = "spec"
    UDI = "udi"
    GTIN = "gtin"
    BATCH = "batch"
    EXPIRY_DATE = "expiry_date"
    SERIAL = "serial"
    QUANTITY = "quantity"
    UNIT_PRICE = "unit_price"
    AMOUNT = "amount"
    PRODUCTION_DATE = "production_date"
    REMARK = "remark"


# Header texts seen in dealers' files, compared after ``header_key``.
HEADER_NAMES: dict[FlowColumn, tuple[str, ...]] = {
    FlowColumn.SOLD_ON: ("销售日期", "出库日期", "发货日期", "日期", "开票日期", "sold on",
                         "sale date", "date", "sold_on"),
    FlowColumn.CUSTOMER_NAME: ("医院名称", "医院", "客户名称", "客户", "终端名称", "终端客户",
                               "购货单位", "hospital", "customer", "customer name",
                               "customer_name"),
    FlowColumn.DEPARTMENT: ("科室", "使用科室", "department", "dept"),
    FlowColumn.PRODUCT_CODE: ("产品编码", "产品代码", "物料编码", "商品编码", "product code",
                              "product_code", "item code", "sku"),
    FlowColumn.PRODUCT_NAME: ("产品名称", "品名", "商品名称", "product name", "product_name",
                              "product"),
    FlowColumn.SPEC: ("规格", "规格型号", "型号", "spec", "specification", "model"),
    FlowColumn.UDI: ("udi", "udi码", "追溯码", "条码", "扫码", "唯一标识", "barcode"),
    FlowColumn.GTIN: ("gtin", "udi-di", "di", "产品标识", "商品条码"),
    FlowColumn.BATCH: ("批号", "生产批号", "批次", "批次号", "batch", "lot", "batch no",
                       "lot no", "batch/lot"),
    FlowColumn.EXPIRY_DATE: ("有效期", "有效期至", "失效日期", "效期", "expiry", "expiry date",
                             "expiry_date", "expiration date", "use by"),
    FlowColumn.SERIAL: ("序列号", "sn", "serial", "serial no", "serial number"),
    FlowColumn.QUANTITY: ("数量", "销售数量", "出库数量", "quantity", "qty"),
    FlowColumn.UNIT_PRICE: ("单价", "销售单价", "unit price", "unit_price", "price"),
    FlowColumn.AMOUNT: ("金额", "销售金额", "amount", "total", "sales amount"),
    FlowColumn.PRODUCTION_DATE: ("生产日期", "production date", "production_date",
                                 "manufacture date"),
    FlowColumn.REMARK: ("备注", "remark", "remarks", "note", "notes", "comment"),
}
_SPACES = re.compile(r"[\s_\-:：*（）()]+")


def header_key(text: str) -> str:
    """A header compared loosely: width, case, spaces, stars and brackets ignored."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", text or "").lower()).strip()


_KNOWN: dict[str, FlowColumn] = {header_key(name): column
                                 for column, names in HEADER_NAMES.items() for name in names}


@dataclass(frozen=True)
class ColumnChoice:
    """One entry of an explicit mapping: a header text, or a 1-based position."""

    column: FlowColumn
    header: str = ""
    position: int = 0


@dataclass
class HeaderMapping:
    # column → 0-based position in the file
    positions: dict[FlowColumn, int] = field(default_factory=dict)
    # column → the header text as written in the file
    headers: dict[FlowColumn, str] = field(default_factory=dict)
    unknown_headers: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def learned(self) -> dict[str, FlowColumn]:
        """What to remember for the dealer's next file: header key → column."""
        return {header_key(text): column for column, text in self.headers.items() if text}


def map_headers(header: Sequence[str], explicit: Sequence[ColumnChoice] = (),
                saved: Mapping[str, FlowColumn] | None = None) -> HeaderMapping:
    mapping = HeaderMapping()
    keys = [header_key(cell) for cell in header]
    taken: set[int] = set()

    def assign(column: FlowColumn, position: int) -> None:
        if column in mapping.positions and mapping.positions[column] != position:
            mapping.problems.append(f"column {column.value} is mapped twice")
            return
        mapping.positions[column] = position
        mapping.headers[column] = header[position] if position < len(header) else ""
        taken.add(position)

    for choice in explicit:
        if choice.header:
            wanted = header_key(choice.header)
            if wanted not in keys:
                mapping.problems.append(f"mapped header {choice.header!r} is not in the file")
                continue
            assign(choice.column, keys.index(wanted))
        elif 1 <= choice.position <= len(header):
            assign(choice.column, choice.position - 1)
        else:
            mapping.problems.append(f"mapped column position {choice.position} is outside "
                                    f"the file's {len(header)} columns")
    for source in (saved or {}, _KNOWN):
        for position, key in enumerate(keys):
            column = source.get(key)
            if column is not None and position not in taken and column not in mapping.positions:
                assign(column, position)
    mapping.unknown_headers = [header[p] for p, key in enumerate(keys)
                               if key and p not in taken]
    missing = missing_columns(mapping.positions.keys())
    if missing:
        mapping.problems.append("missing required columns: " + "; ".join(missing))
    return mapping


def missing_columns(present) -> list[str]:
    present = set(present)
    missing = [f"{names[0]} ({column.value})" for column, names in HEADER_NAMES.items()
               if column in (FlowColumn.SOLD_ON, FlowColumn.CUSTOMER_NAME, FlowColumn.QUANTITY)
               and column not in present]
    if not present & {FlowColumn.UDI, FlowColumn.GTIN, FlowColumn.PRODUCT_CODE}:
        missing.append("UDI, GTIN or 产品编码 (udi, gtin or product_code)")
    if not present & {FlowColumn.UDI, FlowColumn.BATCH}:
        missing.append("批号 (batch) or UDI (udi)")
    return missing
