"""The row checks of a sell-through file: each failure has a check, a stable code and a
message in Chinese and English. Pure Python, no I/O."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Check(enum.IntEnum):
    """Numbered as FlowCheck in flow.proto."""

    FORMAT = 1
    HOSPITAL = 2
    UDI = 3
    BATCH = 4
    QUANTITY = 5
    AUTHORIZATION = 6
    DUPLICATE = 7
    DATE = 8


@dataclass(frozen=True)
class Code:
    check: Check
    code: str
    zh: str
    en: str


def _codes(*codes: Code) -> dict[str, Code]:
    return {code.code: code for code in codes}


CODES = _codes(
    Code(Check.FORMAT, "REQUIRED", "必填项为空", "a required value is empty"),
    Code(Check.FORMAT, "BAD_DATE", "日期无法识别", "not a date"),
    Code(Check.FORMAT, "BAD_QUANTITY", "数量无法识别", "not a whole number of units"),
    Code(Check.FORMAT, "BAD_AMOUNT", "金额无法识别", "not an amount in yuan"),
    Code(Check.FORMAT, "CELL_TOO_LONG", "单元格内容过长", "the cell is too long"),
    Code(Check.FORMAT, "FORMULA", "单元格含公式，请粘贴为数值",
         "the cell holds a formula: paste values instead"),
    Code(Check.DATE, "SOLD_IN_FUTURE", "销售日期晚于今天", "sold on a date in the future"),
    Code(Check.DATE, "OUTSIDE_PERIOD", "销售日期不在申报期间内",
         "sold outside the declared period"),
    Code(Check.DATE, "BEFORE_RECEIPT", "销售日期早于货物到达经销商的日期",
         "sold before the goods reached the dealer"),
    Code(Check.DATE, "PERIOD_CLOSED", "该期间已关账，不能再申报或替换",
         "the period is closed: nothing more can be reported for it"),
    Code(Check.HOSPITAL, "UNKNOWN_HOSPITAL", "医院无法匹配到已知客户",
         "the hospital matches no known customer"),
    Code(Check.HOSPITAL, "AMBIGUOUS_HOSPITAL", "医院匹配到多个客户，请使用全称",
         "the hospital matches several customers: use the full name"),
    Code(Check.UDI, "UDI_UNPARSEABLE", "UDI无法解析", "the UDI does not parse"),
    Code(Check.UDI, "UDI_CHECK_DIGIT", "GTIN校验位错误", "the GTIN check digit is wrong"),
    Code(Check.UDI, "UDI_NO_GTIN", "UDI中没有GTIN(01)", "the UDI carries no GTIN (01)"),
    Code(Check.UDI, "UNKNOWN_PRODUCT", "产品不在目录中", "the product is not in the catalog"),
    Code(Check.UDI, "PRODUCT_MISMATCH", "UDI与产品编码/GTIN不一致",
         "the UDI and the product code or GTIN disagree"),
    Code(Check.UDI, "UDI_BATCH_MISMATCH", "UDI中的批号与批号列不一致",
         "the batch in the UDI differs from the batch column"),
    Code(Check.UDI, "UDI_EXPIRY_MISMATCH", "UDI中的有效期与有效期列不一致",
         "the expiry in the UDI differs from the expiry column"),
    Code(Check.UDI, "UDI_SERIAL_MISMATCH", "UDI中的序列号与序列号列不一致",
         "the serial in the UDI differs from the serial column"),
    Code(Check.UDI, "EXPIRY_MISMATCH", "有效期与发货记录不一致",
         "the expiry differs from the shipped batch's"),
    Code(Check.BATCH, "BATCH_NOT_RECEIVED", "该批号未发给本经销商",
         "this batch never reached the dealer"),
    Code(Check.BATCH, "DIVERTED", "该批号发给了其他经销商（窜货）",
         "this batch was shipped to another dealer (diversion)"),
    Code(Check.BATCH, "SERIAL_NOT_RECEIVED", "该序列号未发给本经销商",
         "this serial never reached the dealer"),
    Code(Check.BATCH, "SERIAL_BATCH_MISMATCH", "序列号所属批号与本行批号不一致",
         "the serial was shipped in another batch"),
    Code(Check.BATCH, "SERIAL_QUANTITY", "有序列号的行数量必须为1",
         "a row with a serial number has quantity 1"),
    Code(Check.QUANTITY, "EXCEEDS_STOCK", "累计销售数量超过到货数量",
         "cumulative quantity sold exceeds what reached the dealer"),
    Code(Check.AUTHORIZATION, "NOT_AUTHORIZED", "经销商在销售日期没有该医院该产品线的授权",
         "no authorization for this dealer, product line and hospital on the sale date"),
    Code(Check.DUPLICATE, "DUPLICATE_ROW", "与文件中前面的行重复",
         "the same row appears earlier in the file"),
    Code(Check.DUPLICATE, "DUPLICATE_SERIAL", "序列号在文件中重复",
         "the serial appears twice in the file"),
    Code(Check.DUPLICATE, "ALREADY_ACCEPTED", "该行已在已接受的流向中申报",
         "already reported in an accepted upload"),
    Code(Check.DUPLICATE, "SERIAL_ALREADY_SOLD", "该序列号已经销售过",
         "the serial was already sold"),
)


@dataclass(frozen=True)
class Candidate:
    customer_id: str
    name: str
    city_code: str
    score_bps: int


@dataclass(frozen=True)
class RowError:
    row_number: int
    check: Check
    code: str
    column: str = ""
    value: str = ""
    detail: str = ""
    candidates: tuple[Candidate, ...] = field(default_factory=tuple)

    @property
    def message_zh(self) -> str:
        text = CODES[self.code].zh
        return f"{text}：{self.detail}" if self.detail else text

    @property
    def message_en(self) -> str:
        text = CODES[self.code].en
        return f"{text}: {self.detail}" if self.detail else text


def check_of(code: str) -> Check:
    return CODES[code].check
