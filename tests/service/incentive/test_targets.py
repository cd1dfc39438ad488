"""Targets (指标) on in-memory collaborators: set by HQ or imported from CSV/XLSX (all or
nothing, every failing row reported, a dry run stores nothing), visible within scope;
achievement from the same facts as rebates."""

from __future__ import annotations

import io
from datetime import date

import pytest
from openpyxl import Workbook

from services.incentive.domain.commission import CommissionBase, CommissionRule
from services.incentive.domain.facts import Diversion
from services.incentive.domain.periods import Period
from services.incentive.domain.targets import Target, TargetMeasure
from services.incentive.usecases import facts, rules, targets
from shared.errors import InvalidArgument, NotFound, PermissionDenied
from shared.tabular import read_table
from tests.service.incentive.fakes import dealer, fake_deps
from tests.service.incentive.support import (
    ADMIN,
    FINANCE,
    accept,
    close,
    configures,
    dealer_staff,
    hq_sees_everything,
    order,
    order_event,
    sale,
    writes,
)

Q1 = Period.parse("2026-Q1")
HEADER = "经销商,产品线,期间,指标类型,指标值\n"


async def _world():
    deps, uow = fake_deps(rate_bps=0)
    hq_sees_everything(deps)
    await uow.dealers.put(dealer("d1", credit_code="91310000MA1K000019"))
    await uow.dealers.put(dealer("d2", credit_code="91440300MA5G000012"))
    return deps, uow


async def _import(deps, content: bytes, filename: str = "targets.csv", dry_run: bool = False,
                  who=ADMIN):
    return await targets.import_targets(read_table(content, filename), dry_run, who=who,
                                        **writes(deps))


async def test_hq_sets_targets_and_each_sees_those_of_its_dealers():
    deps, uow = await _world()
    chosen = [Target("d1", "A系列", Q1, TargetMeasure.SELL_THROUGH_QUANTITY, 100),
              Target("d2", "A系列", Q1, TargetMeasure.SELL_THROUGH_AMOUNT, 5_000_000)]
    assert await targets.set_targets(chosen, who=ADMIN, **configures(deps)) == (2, 0)
    assert await targets.set_targets(chosen[:1], who=ADMIN, **configures(deps)) == (0, 1)
    d1 = dealer_staff("d1")
    deps.scopes.allow(d1, ["d1"])
    seen = await targets.list_targets("", "", None, who=d1, uow=deps.uow(), scopes=deps.scopes)
    assert [(t.dealer_id, t.value, t.updated_by) for t in seen] == [("d1", 100, ADMIN.subject)]
    assert await targets.list_targets("d2", "", None, who=d1, uow=deps.uow(),
                                      scopes=deps.scopes) == []
    assert len(await targets.list_targets("", "", Q1, who=FINANCE, uow=deps.uow(),
                                          scopes=deps.scopes)) == 2
    with pytest.raises(PermissionDenied):       # its own dealer: the role is wrong
        await targets.set_targets(chosen[:1], who=d1, **configures(deps))
    with pytest.raises(NotFound):               # another dealer: not even seen
        await targets.set_targets(chosen, who=d1, **configures(deps))
    for wrong, field in ((Target("nobody", "A系列", Q1, TargetMeasure.SELL_THROUGH_QUANTITY, 1),
                          "targets[0].dealer_id"),
                         (Target("d1", "A系列", Q1, TargetMeasure.SELL_THROUGH_QUANTITY, -1),
                          "targets[0].value")):
        with pytest.raises(InvalidArgument) as refused:
            await targets.set_targets([wrong], who=ADMIN, **configures(deps))
        assert refused.value.violations[0].field == field
    assert len(uow.targets.targets) == 2


async def test_a_target_file_is_checked_by_a_dry_run_then_imported():
    deps, uow = await _world()
    content = (HEADER + "d1,A系列,2026-Q1,数量,120\n"
               "91440300ma5g000012,A系列,2026-03,金额,\"1,234.50\"\n"
               "d1,A系列,2026,采购金额,800000\n").encode("gbk")
    checked = await _import(deps, content, dry_run=True)
    assert (checked.rows, checked.created, checked.problems) == (3, 0, [])
    assert not uow.targets.targets
    done = await _import(deps, content)
    assert (done.created, done.updated) == (3, 0)
    stored = {(t.dealer_id, t.period.label, t.measure): t.value
              for t in uow.targets.targets.values()}
    assert stored == {("d1", "2026-Q1", TargetMeasure.SELL_THROUGH_QUANTITY): 120,
                      ("d2", "2026-03", TargetMeasure.SELL_THROUGH_AMOUNT): 123_450,
                      ("d1", "2026", TargetMeasure.PURCHASE_AMOUNT): 80_000_000}
    again = await _import(deps, content)
    assert (again.created, again.updated) == (0, 3)


async def test_a_target_file_with_bad_rows_stores_nothing_and_names_every_row():
    deps, uow = await _world()
    await close(deps, "2026-01")
    content = (HEADER + "d1,A系列,2026-Q2,数量,10\n"       # fine, but not stored
               "\n"
               "d9,A系列,2026-Q2,数量,10\n"              # row 4: unknown dealer
               "d1,,2026Q5,件数,10\n"                    # row 5: three problems
               "d2,A系列,2026-Q2,金额,12.345\n"          # row 6: three decimals
               "d1,A系列,2026-Q2,数量,11\n"              # row 7: repeats row 2
               "d2,A系列,2026-01,数量,5\n").encode()     # row 8: settled month
    outcome = await _import(deps, content)
    assert sorted((row, p.code, p.column) for row, p in outcome.problems) == [
        (4, "UNKNOWN_DEALER", "经销商"), (5, "INVALID_MEASURE", "指标类型"),
        (5, "INVALID_PERIOD", "期间"), (5, "REQUIRED", "产品线"),
        (6, "INVALID_VALUE", "指标值"), (7, "DUPLICATE_ROW", "经销商"),
        (8, "PERIOD_CLOSED", "期间")]
    assert all(p.zh and p.en for _, p in outcome.problems)
    assert (outcome.created, outcome.updated) == (0, 0) and not uow.targets.targets
    with pytest.raises(InvalidArgument) as columns:
        await _import(deps, "经销商,期间\nd1,2026-Q2\n".encode())
    assert "产品线" in columns.value.violations[0].description


async def test_targets_import_from_xlsx_too():
    deps, uow = await _world()
    book = Workbook()
    sheet = book.active
    sheet.append(["dealer", "product_line", "period", "measure", "value"])
    sheet.append(["d1", "A系列", "2026-Q1", "quantity", 300])
    sheet.append(["d2", "A系列", "2026-Q1", "amount", 2500.5])
    buffer = io.BytesIO()
    book.save(buffer)
    done = await _import(deps, buffer.getvalue(), "指标.xlsx")
    assert (done.created, done.problems) == (2, [])
    assert {t.dealer_id: t.value for t in uow.targets.targets.values()} == {"d1": 300,
                                                                            "d2": 250_050}


async def test_achievement_counts_what_rebates_count():
    deps, _ = await _world()
    await rules.upsert_rule(CommissionRule(name="orders", base=CommissionBase.APPROVED_ORDERS,
                                           base_rate_bps=0, valid_from=date(2026, 1, 1)),
                            who=ADMIN, **configures(deps))
    await targets.set_targets([
        Target("d1", "A系列", Q1, TargetMeasure.SELL_THROUGH_QUANTITY, 50),
        Target("d1", "A系列", Q1, TargetMeasure.SELL_THROUGH_AMOUNT, 400_000),
        Target("d1", "A系列", Period.parse("2026-02"), TargetMeasure.PURCHASE_AMOUNT, 200_000),
        Target("d2", "A系列", Q1, TargetMeasure.SELL_THROUGH_QUANTITY, 10)],
        who=ADMIN, **configures(deps))
    await accept(deps, "u1", "d1", [
        sale("u1", 2, "d1", "h1", 30, 300_000, date(2026, 1, 10)),
        sale("u1", 3, "d1", "", 20, 200_000, date(2026, 1, 11), transfer="d3"),   # transfer
        sale("u1", 4, "d1", "h2", 10, 100_000, date(2026, 2, 1), batch="BX"),     # diverted
        sale("u1", 5, "d1", "h2", 15, 150_000, date(2026, 4, 1))])                # Q2
    await facts.record_diversion(Diversion("dv1", "rejected-upload", "d1", "A-001", "", "BX",
                                           "h2", date(2026, 2, 1), date(2026, 2, 3)),
                                 **writes(deps))
    await order_event(deps, order("o1", "d1", 250_000, approved=date(2026, 2, 5)))
    d1 = dealer_staff("d1")
    deps.scopes.allow(d1, ["d1"])
    found = await targets.achievement("d1", Q1, who=d1, **configures(deps))
    assert [(a.target.measure, a.target.period.label, a.actual, a.share_bps, a.remaining)
            for a in found] == [
        (TargetMeasure.SELL_THROUGH_AMOUNT, "2026-Q1", 300_000, 7_500, 100_000),
        (TargetMeasure.SELL_THROUGH_QUANTITY, "2026-Q1", 30, 6_000, 20),
        (TargetMeasure.PURCHASE_AMOUNT, "2026-02", 250_000, 12_500, 0)]
    with pytest.raises(NotFound):
        await targets.achievement("d2", Q1, who=d1, **configures(deps))
    assert [a.actual for a in await targets.achievement("d2", Q1, who=FINANCE,
                                                        scopes=deps.scopes,
                                                        **writes(deps))] == [0]
