"""Rules for one row of a dealer import file: which columns exist (English or Chinese
headers), how cells become dealer fields, and the row-level errors in Chinese and English.
Pure Python, no I/O."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from services.identity.domain.model import OrgUnit
from services.identity.domain.org import DealerFields, dealer_violations
from services.identity.domain.rules import OrgKind, Tier

COLUMNS = {
    "name": ("name", "名称", "经销商名称"),
    "credit_code": ("credit_code", "统一社会信用代码", "信用代码"),
    "tier": ("tier", "等级", "级别"),
    "region_code": ("region_code", "区域", "区域代码"),
    "platform_credit_code": ("platform_credit_code", "平台商信用代码", "平台商"),
    "division_codes": ("division_codes", "行政区划", "区域编码", "授权区域"),
    "product_lines": ("product_lines", "产品线"),
    "city_code": ("city_code", "城市", "城市代码"),
    "status": ("status", "状态"),
    "shared_with_platform": ("shared_with_platform", "共享给平台商"),
    "custom_tags": ("custom_tags", "标签", "自定义标签"),
}
REQUIRED = ("name", "credit_code", "tier", "region_code", "division_codes", "product_lines")
TIERS = {"platform": Tier.PLATFORM, "平台商": Tier.PLATFORM, "one": Tier.ONE, "一级": Tier.ONE,
         "tier1": Tier.ONE, "1": Tier.ONE, "two": Tier.TWO, "二级": Tier.TWO,
         "tier2": Tier.TWO, "2": Tier.TWO}
STATUS = {"": "active", "active": "active", "正常": "active", "suspended": "suspended",
          "暂停": "suspended", "closed": "closed", "关闭": "closed"}
TRUE = {"1", "true", "yes", "y", "是"}
SPLIT = re.compile(r"[;,|；，、\s]+")

MESSAGES = {
    "MISSING_COLUMN": ("缺少必填列", "required column is missing"),
    "REQUIRED": ("必填项为空", "required value is empty"),
    "INVALID_CREDIT_CODE": ("统一社会信用代码无效", "invalid unified social credit code"),
    "UNKNOWN_DIVISION": ("未知的行政区划代码", "unknown GB/T 2260 division code"),
    "INVALID_TIER": ("等级无效（平台商/一级/二级）", "tier must be platform, one or two"),
    "INVALID_STATUS": ("状态无效", "invalid status"),
    "INVALID_VALUE": ("取值无效", "invalid value"),
    "UNKNOWN_REGION": ("未知的区域", "unknown region code"),
    "DUPLICATE_IN_FILE": ("文件中信用代码重复", "credit code appears twice in the file"),
    "INVALID_PLATFORM": ("平台商无效：上级必须是平台商",
                         "the platform dealer must be a platform dealer"),
    "NAME_TAKEN": ("信用代码已被其他机构使用", "credit code is used by a non-dealer org unit"),
    "STILL_PLATFORM": ("仍是其他子经销商的平台商，不能改为非平台商",
                       "still the platform dealer of sub-dealers not in this file"),
}


@dataclass(frozen=True)
class RowProblem:
    row_number: int
    column: str
    code: str
    value: str
    detail: str = ""

    @property
    def message_zh(self) -> str:
        return MESSAGES[self.code][0] + (f"：{self.detail}" if self.detail else "")

    @property
    def message_en(self) -> str:
        return MESSAGES[self.code][1] + (f": {self.detail}" if self.detail else "")


@dataclass(frozen=True)
class DealerFile:
    """An uploaded dealer file, as sent: CSV (UTF-8 or GBK) or XLSX."""

    content: bytes
    filename: str = ""
    # The format and encoding the uploader named (0: detect).
    file_format: int = 0
    encoding: int = 0


@dataclass(frozen=True)
class ImportOutcome:
    accepted: bool
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    problems: tuple[RowProblem, ...] = ()


@dataclass(frozen=True)
class ImportRow:
    row_number: int
    fields: DealerFields
    region_code: str
    platform_credit_code: str
    shared_with_platform: bool


def map_header(header: list[str]) -> tuple[dict[str, int], list[RowProblem]]:
    index: dict[str, int] = {}
    lowered = [h.strip().lower() for h in header]
    for key, names in COLUMNS.items():
        for name in names:
            if name.lower() in lowered:
                index[key] = lowered.index(name.lower())
                break
    problems = [RowProblem(1, COLUMNS[key][0], "MISSING_COLUMN", "", COLUMNS[key][0])
                for key in REQUIRED if key not in index]
    return index, problems


def split_list(value: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(p for p in SPLIT.split(value) if p))


_FIELD_CODES = {"credit_code": "INVALID_CREDIT_CODE", "division_codes": "UNKNOWN_DIVISION",
                "city_code": "UNKNOWN_DIVISION", "tier": "INVALID_TIER",
                "status": "INVALID_STATUS"}


def parse_row(row_number: int, cells: list[str], index: dict[str, int]
              ) -> tuple[ImportRow | None, list[RowProblem]]:
    def cell(key: str) -> str:
        position = index.get(key)
        return cells[position].strip() if position is not None and position < len(cells) else ""

    problems: list[RowProblem] = []
    for key in REQUIRED:
        if not cell(key):
            problems.append(RowProblem(row_number, COLUMNS[key][0], "REQUIRED", ""))
    tier_text = cell("tier")
    tier = TIERS.get(tier_text.lower())
    if tier_text and tier is None:
        problems.append(RowProblem(row_number, "tier", "INVALID_TIER", tier_text))
    status = STATUS.get(cell("status").lower())
    if status is None:
        problems.append(RowProblem(row_number, "status", "INVALID_STATUS", cell("status")))
    fields = DealerFields(
        name=cell("name"), credit_code=cell("credit_code").upper(),
        tier=tier.value if tier else "", division_codes=split_list(cell("division_codes")),
        product_lines=split_list(cell("product_lines")), city_code=cell("city_code"),
        status=status or "active", custom_tags=split_list(cell("custom_tags")))
    reported = {p.column for p in problems}
    for violation in dealer_violations(fields):
        column = violation.field.split("[")[0]
        if column in reported or (column == "tier" and tier is None):
            continue
        value = getattr(fields, column, "")
        if "[" in violation.field:
            value = value[int(violation.field.split("[")[1].rstrip("]"))]
        elif isinstance(value, tuple):
            value = ";".join(value)
        problems.append(RowProblem(row_number, column, _FIELD_CODES.get(column, "INVALID_VALUE"),
                                   str(value), violation.description))
    if problems:
        return None, problems
    return ImportRow(row_number, fields, cell("region_code"), cell("platform_credit_code").upper(),
                     cell("shared_with_platform").lower() in TRUE), []


def duplicate_problems(rows: Iterable[ImportRow]) -> list[RowProblem]:
    """A credit code on two rows of the file: the later rows are reported."""
    seen: dict[str, int] = {}
    problems = []
    for row in rows:
        code = row.fields.credit_code
        if code in seen:
            problems.append(RowProblem(row.row_number, "credit_code", "DUPLICATE_IN_FILE", code,
                                       f"also on row {seen[code]}"))
        seen.setdefault(code, row.row_number)
    return problems


def reference_problems(rows: list[ImportRow], region_codes: Iterable[str],
                       existing: Mapping[str, OrgUnit],
                       sub_dealers: Iterable[OrgUnit]) -> list[RowProblem]:
    """What the rows say against the org tree: the region exists; the credit code is not
    a non-dealer's; a platform credit code names a platform dealer (in the file or
    already there) that is not itself a sub-dealer, and not the row itself; a platform
    dealer the file demotes has no sub-dealers left outside the file. ``existing`` are
    the units with the file's credit codes (rows' and platforms'), ``sub_dealers`` the
    current sub-dealers of any of them."""
    regions = set(region_codes)
    subs_of: dict[str, list[OrgUnit]] = {}
    for sub in sub_dealers:
        subs_of.setdefault(sub.platform_dealer_id or "", []).append(sub)
    in_file = {row.fields.credit_code: row for row in rows}
    problems = []
    for row in rows:
        code = row.fields.credit_code
        if row.region_code not in regions:
            problems.append(RowProblem(row.row_number, "region_code", "UNKNOWN_REGION",
                                       row.region_code))
        current = existing.get(code)
        if current is not None and current.kind != OrgKind.DEALER:
            problems.append(RowProblem(row.row_number, "credit_code", "NAME_TAKEN", code))
        platform_code = row.platform_credit_code
        if platform_code:
            if platform_code in in_file:
                target_tier = in_file[platform_code].fields.tier
                target_is_sub = bool(in_file[platform_code].platform_credit_code)
            elif platform_code in existing:
                target = existing[platform_code]
                target_tier = target.tier if target.kind == OrgKind.DEALER else None
                target_is_sub = bool(target.platform_dealer_id)
            else:
                target_tier, target_is_sub = None, False
            if (target_tier != Tier.PLATFORM or target_is_sub or platform_code == code
                    or row.fields.tier == Tier.PLATFORM):
                problems.append(RowProblem(row.row_number, "platform_credit_code",
                                           "INVALID_PLATFORM", platform_code))
        if current is not None and row.fields.tier != Tier.PLATFORM:
            left = [sub for sub in subs_of.get(current.id, [])
                    if sub.credit_code not in in_file]
            if left:
                problems.append(RowProblem(row.row_number, "tier", "STILL_PLATFORM",
                                           row.fields.tier,
                                           "、".join(sub.name for sub in left[:5])))
    return problems
