"""Dealer import on in-memory collaborators: all or nothing, every bad row reported by
row number and column, CSV (UTF-8 or GBK) and XLSX, creates and updates announced."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest
from openpyxl import Workbook

from services.identity.domain.dealer_import import DealerFile
from services.identity.domain.rules import OrgKind, Role, Tier
from services.identity.usecases import dealer_import
from shared.errors import InvalidArgument, PermissionDenied
from shared.events.identity import ORG_UNIT_CREATED, ORG_UNIT_UPDATED, TAGS_CHANGED
from tests.service.identity.fakes import Org
from tests.world import credit_code

HEADER = "名称,统一社会信用代码,等级,区域,行政区划,产品线,平台商信用代码,共享给平台商,标签\n"


def csv_file(*rows: str, encoding: str = "utf-8") -> DealerFile:
    return DealerFile((HEADER + "".join(row + "\n" for row in rows)).encode(encoding),
                      "dealers.csv")


def xlsx_file(*rows: list[str]) -> DealerFile:
    book = Workbook()
    for row in rows:
        book.active.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return DealerFile(buffer.getvalue(), "dealers.xlsx")


async def run(world: Org, file: DealerFile, dry_run: bool = False, who=None):
    return await dealer_import.import_dealers(file, dry_run, **{**world.kw,
                                                                "who": who or world.admin})


def dealers(world: Org) -> dict[str, object]:
    return {u.name: u for u in world.uow.org_units.units.values() if u.kind == OrgKind.DEALER}


GOOD = (f"上海平台商,{credit_code(1)},平台商,east,310000,A系列;B系列,,,",
        f"苏州分销商,{credit_code(2)},二级,east,320500,A系列,{credit_code(1)},是,重点",
        f"深圳经销商,{credit_code(3)},一级,south,440300|440305,A系列,,,")


async def import_world() -> Org:
    world = await Org.start()
    await world.region("east", "华东")
    await world.region("south", "华南")
    return world


async def test_a_good_file_creates_its_dealers_platform_dealers_first():
    world = await import_world()
    dry = await run(world, csv_file(*GOOD, encoding="gbk"), dry_run=True)
    assert (dry.accepted, dry.created, dry.updated) == (True, 3, 0) and not dealers(world)
    outcome = await run(world, csv_file(*GOOD, encoding="gbk"))
    assert (outcome.accepted, outcome.created, outcome.updated) == (True, 3, 0)
    by_name = dealers(world)
    sub = by_name["苏州分销商"]
    assert sub.platform_dealer_id == by_name["上海平台商"].id and sub.shared_with_platform
    assert sub.custom_tags == ("重点",) and sub.derived_tags == ("华东-苏州-二级-A系列",)
    assert by_name["深圳经销商"].division_codes == ("440300", "440305")
    created = world.uow.published_of(ORG_UNIT_CREATED)[-3:]
    assert created[0].org_unit.name == "上海平台商"
    assert [e.action for e in world.uow.audit.entries][-3:] == ["org_unit.import.create"] * 3
    assert world.uow.audit.entries[-1].reason == "import dealers.csv"


async def test_every_bad_row_is_reported_and_nothing_is_written():
    world = await import_world()
    await run(world, csv_file(*GOOD))
    before = dict(world.uow.org_units.units)
    events = len(world.uow.published)
    outcome = await run(world, csv_file(
        f"深圳经销商,{credit_code(3)},一级,south,440300,A系列,,,",  # an update: fine
        "坏信用代码,91310000MA1000001X,一级,east,310000,A系列,,,",
        "",  # a blank line still counts, as in the user's editor
        f"未知区划,{credit_code(10)},一级,east,310099,A系列,,,",
        f"未知区域,{credit_code(11)},一级,north,310000,A系列,,,",
        f"坏上级,{credit_code(12)},二级,east,310000,A系列,{credit_code(3)},,",
        f"重复,{credit_code(10)},三级,east,310000,,,,",
        f"降级平台商,{credit_code(1)},一级,east,310000,A系列,,,"))
    assert outcome.accepted is False
    assert {(p.row_number, p.column, p.code) for p in outcome.problems} == {
        (3, "credit_code", "INVALID_CREDIT_CODE"),
        (5, "division_codes", "UNKNOWN_DIVISION"),
        (6, "region_code", "UNKNOWN_REGION"),
        (7, "platform_credit_code", "INVALID_PLATFORM"),
        (8, "tier", "INVALID_TIER"),
        (8, "product_lines", "REQUIRED"),
        (9, "tier", "STILL_PLATFORM"),
    }
    assert all(p.message_zh and p.message_en for p in outcome.problems)
    assert [p.row_number for p in outcome.problems] == sorted(
        p.row_number for p in outcome.problems)
    assert world.uow.org_units.units == before and len(world.uow.published) == events


async def test_a_credit_code_twice_in_the_file_or_held_by_a_region_is_refused():
    world = await import_world()
    twice = await run(world, csv_file(
        f"甲,{credit_code(5)},一级,east,310000,A系列,,,",
        f"乙,{credit_code(5)},一级,east,310000,A系列,,,"))
    assert [(p.row_number, p.code, p.detail) for p in twice.problems] == [
        (3, "DUPLICATE_IN_FILE", "also on row 2")]
    # A unit that is not a dealer holding the credit code (possible for older data).
    hq = await world.hq()
    world.uow.org_units.units[hq.id] = replace(hq, credit_code=credit_code(6))
    taken = await run(world, csv_file(f"丙,{credit_code(6)},一级,east,310000,A系列,,,"))
    assert [(p.column, p.code) for p in taken.problems] == [("credit_code", "NAME_TAKEN")]


async def test_an_xlsx_file_updates_changed_dealers_and_counts_the_unchanged():
    world = await import_world()
    await run(world, csv_file(*GOOD))
    before = dealers(world)
    outcome = await run(world, xlsx_file(
        ["name", "credit_code", "tier", "region_code", "division_codes", "product_lines",
         "custom_tags"],
        ["深圳经销商（更名）", credit_code(3), "one", "south", "440300", "A系列", "新"],
        ["上海平台商", credit_code(1), "platform", "east", "310000", "A系列;B系列", ""],
        ["杭州经销商", credit_code(4), "two", "east", "330100", "C系列", ""]))
    assert (outcome.accepted, outcome.created, outcome.updated, outcome.unchanged) == (
        True, 1, 1, 1)
    renamed = await world.uow.org_units.get(before["深圳经销商"].id)
    assert renamed.name == "深圳经销商（更名）" and renamed.division_codes == ("440300",)
    assert renamed.custom_tags == ("新",)  # custom tags are added, never dropped by a file
    [updated] = world.uow.published_of(ORG_UNIT_UPDATED)
    assert set(updated.changed_fields) == {"name", "division_codes", "custom_tags"}
    assert world.uow.published_of(TAGS_CHANGED)[-1].added == ["新"]
    again = await run(world, xlsx_file(["name", "credit_code", "tier", "region_code",
                                        "division_codes", "product_lines"],
                                       ["杭州经销商", credit_code(4), "two", "east", "330100",
                                        "C系列"]), dry_run=True)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 1)


async def test_files_without_columns_or_rows_and_callers_without_the_right():
    world = await import_world()
    missing = await run(world, DealerFile(b"name,tier\nx,one\n", "x.csv"))
    assert missing.accepted is False
    assert {p.column for p in missing.problems} >= {"credit_code", "region_code"}
    with pytest.raises(InvalidArgument) as error:
        await run(world, DealerFile(b"", "x.csv"))
    assert error.value.violations[0].field == "content"
    with pytest.raises(InvalidArgument) as error:
        await run(world, DealerFile(HEADER.encode(), "x.csv"))
    assert error.value.violations[0].field == "content"
    await world.user("fin.importer", (Role.FINANCE,), await world.hq())
    with pytest.raises(PermissionDenied):
        await run(world, csv_file(*GOOD), who=await world.as_user("fin.importer"))
    assert not dealers(world)


async def test_an_imported_sub_dealer_may_name_an_existing_platform_dealer():
    world = await import_world()
    platform = await world.dealer(await world.uow.org_units.region("east"), tier=Tier.PLATFORM)
    outcome = await run(world, csv_file(
        f"宁波分销商,{credit_code(20)},二级,east,330200,A系列,{platform.credit_code},,"))
    assert outcome.accepted, outcome.problems
    sub = dealers(world)["宁波分销商"]
    assert sub.platform_dealer_id == platform.id and not sub.shared_with_platform
