"""The flow use cases on in-memory fakes: an upload stored and validated, every check's
code, all-or-nothing acceptance with its events, transfers to sub-dealers, replacement
and closed periods, diversions, resumed validations, idempotent and broken streams."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest

from services.flow.domain.columns import FlowColumn
from services.flow.domain.model import (
    Authorization,
    Customer,
    Dealer,
    DiversionFilter,
    DiversionStatus,
    Encoding,
    FileFormat,
    MappingEntry,
    Product,
    ShipmentLine,
    UploadStatus,
)
from services.flow.usecases import diversions, projections, results, uploads
from services.flow.usecases.validate import validate_next
from shared.context import Principal
from shared.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from shared.events.flow import (
    DIVERSION_DETECTED,
    DIVERSION_RESOLVED,
    FLOW_UPLOAD_ACCEPTED,
    FLOW_UPLOAD_REJECTED,
    FLOW_UPLOAD_SUPERSEDED,
)
from shared.pagination import PageRequest
from shared.testing import FakeClock, FakeScopes
from tests.service.flow.fakes import FakeFlowUnitOfWork, make_deps
from tests.world import gtin

A, B, P, S = "dealer-a", "dealer-b", "dealer-p", "dealer-s"
STAFF = {d: Principal(subject=f"user:{d}", roles=frozenset({"dealer_sales"}), dealer_id=d)
         for d in (A, B, P, S)}
HQ = Principal(subject="user:hq", roles=frozenset({"hq_admin"}))
CM_B = Principal(subject="user:cm-b", roles=frozenset({"channel_manager"}))
G1, G2 = gtin(1), gtin(2)
HEADER = ["销售日期", "医院名称", "科室", "产品编码", "UDI", "批号", "有效期", "序列号", "数量",
          "金额"]


def row(day="2026-03-05", hospital="瑞金医院", product="A-001", batch="L1", quantity="1",
        udi="", serial="", expiry="", department="", amount="") -> list[str]:
    return [day, hospital, department, product, udi, batch, expiry, serial, quantity, amount]


def csv_file(rows, header=HEADER, encoding="utf-8") -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(header)
    writer.writerows(rows)
    return text.getvalue().encode(encoding)


async def chunks_of(content: bytes, size: int = 7):
    for start in range(0, len(content), size):
        yield content[start:start + size]


@pytest.fixture
def env():
    uow = FakeFlowUnitOfWork()
    clock = FakeClock(datetime(2026, 3, 20, 9, 0, tzinfo=UTC))
    scopes = FakeScopes()
    for dealer in (A, B, S):
        scopes.allow(STAFF[dealer], {dealer})
    scopes.allow(STAFF[P], {P, S})
    scopes.allow(HQ, all_dealers=True)
    scopes.allow(CM_B, {B})
    return uow, clock, scopes, make_deps(uow, clock, scopes)


async def seed(deps) -> None:
    uow = deps.uow()
    for product in (Product("A-001", G1, "输液器", "A系列"), Product("A-002", G2, "导管", "B系列")):
        await projections.apply_product(product, uow=uow)
    for dealer in (Dealer(A, "上海甲医疗器械有限公司", division_codes=("310000",)),
                   Dealer(B, "上海乙医疗器械有限公司", division_codes=("310000",)),
                   Dealer(P, "上海平台医疗器械有限公司", is_platform=True,
                          division_codes=("310000", "320000")),
                   Dealer(S, "上海二级医疗器械有限公司", platform_dealer_id=P,
                          division_codes=("310000",))):
        await projections.apply_dealer(dealer, uow=uow)
    now = deps.clock.now()
    for customer in (Customer("c-ruijin", "上海交通大学医学院附属瑞金医院", "上海交通大学瑞金医院",
                              "310100", ("瑞金医院",)),
                     Customer("c-zhongshan", "复旦大学附属中山医院", "复旦大学中山医院", "310100"),
                     Customer("c-renji-sh", "仁济医院", "仁济医院", "310100"),
                     Customer("c-renji-nj", "仁济医院", "仁济医院", "320100")):
        await projections.apply_customer(customer, now, uow=uow)
    lines = [
        ShipmentLine("S1", 1, A, "A-001", G1, "L1", date(2028, 12, 31), 10, date(2026, 3, 2)),
        ShipmentLine("S1", 2, A, "A-001", G1, "SER", date(2028, 12, 31), 3, date(2026, 3, 2),
                     ("SN1", "SN2", "SN3")),
        ShipmentLine("S2", 1, B, "A-001", G1, "LB", date(2028, 12, 31), 5, date(2026, 3, 3),
                     ("SNB1",)),
        ShipmentLine("S3", 1, P, "A-001", G1, "LP", date(2028, 12, 31), 20, date(2026, 3, 4)),
        ShipmentLine("S4", 1, A, "A-002", G2, "L9", None, 4, date(2026, 3, 10)),
    ]
    await projections.apply_shipment(lines, uow=uow)


async def submit(deps, dealer, content, *, who=None, **fields):
    request = uploads.UploadRequest(
        dealer_id=dealer, filename=fields.pop("filename", "flow.csv"),
        format=fields.pop("format", FileFormat.UNSPECIFIED),
        encoding=fields.pop("encoding", Encoding.UNSPECIFIED),
        mapping=fields.pop("mapping", ()), header_row=0, sheet_name="",
        size_bytes=fields.pop("size_bytes", len(content)), sha256=fields.pop("sha256", ""),
        period_start=fields.pop("period_start", ""), period_end=fields.pop("period_end", ""),
        client_request_id=fields.pop("client_request_id", ""),
        replaces_upload_id=fields.pop("replaces_upload_id", ""))
    assert not fields
    return await uploads.receive_upload(request, chunks_of(content), who=who or STAFF[dealer],
                                        deps=deps)


async def run(deps, dealer, content, **fields):
    upload = await submit(deps, dealer, content, **fields)
    assert await validate_next(deps)
    return await uploads.get_upload(upload.id, who=HQ, uow=deps.uow(), scopes=deps.scopes)


async def codes_of(deps, upload_id) -> set[str]:
    page = await results.list_errors(upload_id, None, PageRequest(size=500), who=HQ,
                                     uow=deps.uow(), scopes=deps.scopes)
    return {error.code for error in page.items}


async def test_an_upload_that_passes_is_accepted_and_published_in_parts(env):
    uow, _, _, deps = env
    await seed(deps)
    content = csv_file([
        row(udi=f"(01){G1}(17)281231(10)L1", expiry="2028-12-31", quantity="2",
            amount="200.00"),
        row(day="2026/3/6", hospital="复旦大学附属中山医院", quantity="1,000"[:1]),
        row(day="20260307", udi=f"]d201{G1}17281231" + "10SER\x1d21SN1", batch="SER",
            quantity="1"),
        row(day="2026年3月11日", product="A-002", batch="L9", quantity="3盒"),
    ])
    upload = await run(deps, A, content)
    assert upload.status == UploadStatus.ACCEPTED, await codes_of(deps, upload.id)
    assert upload.total_quantity == 7
    assert upload.total_amount.amount_minor == 20_000
    events = uow.published_of(FLOW_UPLOAD_ACCEPTED)
    assert [e.part_index for e in events] == [0, 1]
    rows = [r for e in events for r in e.rows]
    assert sum(r.quantity for r in rows) == 7
    assert {r.customer_id for r in rows} == {"c-ruijin", "c-zhongshan"}
    assert [r.serials for r in rows if r.batch == "SER"] == [["SN1"]]
    assert all(r.shipment_id for r in rows)


async def test_every_check_reports_its_code_and_nothing_is_accepted(env):
    uow, _, _, deps = env
    await seed(deps)
    await projections.apply_shipment([ShipmentLine("S9", 1, A, "A-001", G1, "LATE",
                                                   None, 5, date(2026, 3, 15))], uow=deps.uow())
    bad = f"(01){G1[:-1]}{(int(G1[-1]) + 1) % 10}(10)L1"
    content = csv_file([
        row(day="not a date"),                                      # BAD_DATE
        row(quantity="many"),                                       # BAD_QUANTITY
        row(hospital=""),                                           # REQUIRED
        row(day="2026-03-25"),                                      # SOLD_IN_FUTURE
        row(day="2026-02-27"),                                      # OUTSIDE_PERIOD
        row(day="2026-03-10", batch="LATE"),                        # BEFORE_RECEIPT
        row(hospital="火星医院"),                                    # UNKNOWN_HOSPITAL
        row(hospital="仁济医院"),                                    # AMBIGUOUS (P: 2 cities)
        row(udi=bad),                                               # UDI_CHECK_DIGIT
        row(udi=f"(01){G1}(10)OTHER", batch="L1"),                   # UDI_BATCH_MISMATCH
        row(product="NOPE"),                                        # UNKNOWN_PRODUCT
        row(batch="NEVER"),                                         # BATCH_NOT_RECEIVED
        row(batch="LB"),                                            # DIVERTED
        row(batch="SER", serial="SN-UNKNOWN"),                      # SERIAL_NOT_RECEIVED
        row(batch="L1", quantity="11"),                             # EXCEEDS_STOCK
        row(day="2026-03-06", hospital="中山医院"),                    # ok once …
        row(day="2026-03-06", hospital="中山医院"),                    # … DUPLICATE_ROW
        row(batch="SER", serial="SN2"),
        row(batch="SER", serial="SN2", day="2026-03-07"),           # DUPLICATE_SERIAL
    ])
    upload = await run(deps, A, content, period_start="2026-03-01", period_end="2026-03-31")
    assert upload.status == UploadStatus.REJECTED
    found = await codes_of(deps, upload.id)
    assert {"BAD_DATE", "BAD_QUANTITY", "REQUIRED", "SOLD_IN_FUTURE", "OUTSIDE_PERIOD",
            "BEFORE_RECEIPT", "UNKNOWN_HOSPITAL", "UDI_CHECK_DIGIT", "UDI_BATCH_MISMATCH",
            "UNKNOWN_PRODUCT", "BATCH_NOT_RECEIVED", "DIVERTED", "SERIAL_NOT_RECEIVED",
            "EXCEEDS_STOCK", "DUPLICATE_ROW", "DUPLICATE_SERIAL"} <= found, found
    assert uow.published_of(FLOW_UPLOAD_ACCEPTED) == []
    assert uow.published_of(FLOW_UPLOAD_REJECTED)[0].upload.failed_rows == upload.failed_rows
    assert uow.flow_rows.active() == []
    # The ambiguous hospital fails with its candidates, for a dealer covering both cities.
    platform = await run(deps, P, csv_file([row(hospital="仁济医院", batch="LP")]))
    page = await results.list_errors(platform.id, None, PageRequest(), who=HQ, uow=deps.uow(),
                                     scopes=deps.scopes)
    ambiguous = [e for e in page.items if e.code == "AMBIGUOUS_HOSPITAL"]
    assert {c.customer_id for c in ambiguous[0].candidates} == {"c-renji-sh", "c-renji-nj"}


async def test_accepted_flow_counts_against_later_uploads(env):
    _, _, _, deps = env
    await seed(deps)
    first = await run(deps, A, csv_file([row(quantity="6"), row(batch="SER", serial="SN3")]))
    assert first.status == UploadStatus.ACCEPTED
    again = await run(deps, A, csv_file([row(quantity="6", day="2026-03-09"),
                                         row(batch="SER", serial="SN3", day="2026-03-09"),
                                         row(quantity="1")]))
    assert again.status == UploadStatus.REJECTED
    assert {"EXCEEDS_STOCK", "SERIAL_ALREADY_SOLD", "ALREADY_ACCEPTED"} <= await codes_of(
        deps, again.id)


async def test_authorization_is_checked_for_the_lines_that_need_it(env):
    uow, clock, scopes, _ = env
    deps = make_deps(uow, clock, scopes, authorization_lines=frozenset({"A系列"}))
    await seed(deps)
    await projections.apply_authorization(Authorization(
        "g1", A, "c-zhongshan", product_line="A系列", department="ICU",
        valid_from=date(2026, 1, 1), valid_to=date(2026, 12, 31)), uow=deps.uow())
    upload = await run(deps, A, csv_file([
        row(hospital="中山医院", department="ICU"),
        row(hospital="中山医院", department="心内科"),             # other department
        row(hospital="瑞金医院"),                                  # no grant
        row(product="A-002", batch="L9", day="2026-03-12")]))     # B系列: not checked
    assert upload.status == UploadStatus.REJECTED
    page = await results.list_errors(upload.id, None, PageRequest(), who=HQ, uow=deps.uow(),
                                     scopes=deps.scopes)
    assert sorted(e.row_number for e in page.items if e.code == "NOT_AUTHORIZED") == [3, 4]


async def test_a_transfer_moves_stock_to_the_sub_dealer_who_may_then_sell_it(env):
    uow, _, _, deps = env
    await seed(deps)
    # Before any transfer the sub-dealer cannot sell its platform dealer's batch.
    early = await run(deps, S, csv_file([row(batch="LP", day="2026-03-06")]))
    assert "BATCH_NOT_RECEIVED" in await codes_of(deps, early.id)
    transfer = await run(deps, P, csv_file([
        row(hospital="上海二级医疗器械有限公司", batch="LP", quantity="8", day="2026-03-05"),
        row(hospital="瑞金医院", batch="LP", quantity="12", day="2026-03-06")]))
    assert transfer.status == UploadStatus.ACCEPTED, await codes_of(deps, transfer.id)
    moved = [r for e in uow.published_of(FLOW_UPLOAD_ACCEPTED) for r in e.rows
             if r.transfer_to_dealer_id]
    assert [(r.transfer_to_dealer_id, r.quantity, r.customer_id) for r in moved] == [(S, 8, "")]
    sale = await run(deps, S, csv_file([row(batch="LP", quantity="8", day="2026-03-07")]))
    assert sale.status == UploadStatus.ACCEPTED, await codes_of(deps, sale.id)
    # Everything that reached the platform dealer is gone now.
    more = await run(deps, P, csv_file([row(batch="LP", quantity="1", day="2026-03-08")]))
    assert "EXCEEDS_STOCK" in await codes_of(deps, more.id)
    too_early = await run(deps, S, csv_file([row(batch="LP", day="2026-03-04")]))
    assert "BEFORE_RECEIPT" in await codes_of(deps, too_early.id)


async def test_a_replacement_supersedes_the_accepted_upload_until_the_period_closes(env):
    uow, clock, _, deps = env
    await seed(deps)
    march = {"period_start": "2026-03-01", "period_end": "2026-03-31"}
    first = await run(deps, A, csv_file([row(quantity="10")]), **march)
    assert first.status == UploadStatus.ACCEPTED
    # Its 10 units are sold: a replacement may report them again, differently.
    second = await run(deps, A, csv_file([row(quantity="7"), row(hospital="中山医院",
                                                                   quantity="3")]),
                       replaces_upload_id=first.id, **march)
    assert second.status == UploadStatus.ACCEPTED, await codes_of(deps, second.id)
    superseded = uow.published_of(FLOW_UPLOAD_SUPERSEDED)
    assert [(e.upload_id, e.superseded_by_upload_id) for e in superseded] == [
        (first.id, second.id)]
    accepted = uow.published_of(FLOW_UPLOAD_ACCEPTED)[-1]
    assert accepted.replaces_upload_id == first.id
    old = await uploads.get_upload(first.id, who=HQ, uow=deps.uow(), scopes=deps.scopes)
    assert old.status == UploadStatus.SUPERSEDED
    assert sum(r.quantity for r in uow.flow_rows.active()) == 10
    clock.moment = datetime(2026, 4, 5, tzinfo=UTC)
    await diversions.close_period("2026-03-31", who=HQ, deps=deps)
    with pytest.raises(FailedPrecondition):
        await submit(deps, A, csv_file([row(quantity="1")]), replaces_upload_id=second.id,
                     **march)
    closed = await run(deps, A, csv_file([row(quantity="1", day="2026-03-30")]))
    assert "PERIOD_CLOSED" in await codes_of(deps, closed.id)


async def test_a_diversion_is_recorded_seen_by_the_shipped_dealers_manager_and_resolved(env):
    uow, _, _, deps = env
    await seed(deps)
    upload = await run(deps, A, csv_file([row(batch="LB", quantity="2"),
                                          row(batch="LB", serial="SNB1", quantity="1")]))
    assert upload.status == UploadStatus.REJECTED
    detected = uow.published_of(DIVERSION_DETECTED)
    assert len(detected) == 1
    diversion = detected[0].diversion
    assert (diversion.selling_dealer_id, diversion.shipped_dealer_id, diversion.shipment_id,
            diversion.quantity) == (A, B, "S2", 3)
    seen = await diversions.list_diversions(DiversionFilter(), PageRequest(), who=CM_B,
                                            uow=deps.uow(), scopes=deps.scopes)
    assert [d.id for d in seen.items] == [diversion.id]
    with pytest.raises(PermissionDenied):
        await diversions.list_diversions(DiversionFilter(), PageRequest(), who=STAFF[A],
                                         uow=deps.uow(), scopes=deps.scopes)
    with pytest.raises(PermissionDenied):
        await diversions.resolve_diversion(diversion.id, DiversionStatus.CONFIRMED, "查实",
                                           who=CM_B, deps=deps)
    resolved = await diversions.resolve_diversion(diversion.id, DiversionStatus.CONFIRMED,
                                                  "经销商甲承认窜货", who=HQ, deps=deps)
    assert resolved.status == DiversionStatus.CONFIRMED
    assert uow.published_of(DIVERSION_RESOLVED)[0].diversion.resolution_note == "经销商甲承认窜货"
    # The same diversion reported again while open is not recorded twice.
    await run(deps, A, csv_file([row(batch="LB", day="2026-03-09")]))
    assert len(uow.published_of(DIVERSION_DETECTED)) == 2  # the first was resolved


async def test_an_abandoned_validation_is_taken_over_after_the_lease(env):
    uow, clock, scopes, deps = env
    await seed(deps)
    upload = await submit(deps, A, csv_file([row()]))
    async with uow:
        await uow.uploads.claim("dead-worker", clock.now(), clock.now())
        await uow.commit()
    assert not await validate_next(deps)  # the other worker still holds it
    clock.advance(seconds=61)
    assert await validate_next(deps)
    done = await uploads.get_upload(upload.id, who=HQ, uow=uow, scopes=scopes)
    assert done.status == UploadStatus.ACCEPTED


async def test_stock_that_changes_during_validation_sends_the_upload_round_again(env):
    uow, _, _, deps = env
    await seed(deps)
    upload = await submit(deps, A, csv_file([row(quantity="10")]))

    original = uow.flow_rows.movements

    async def movements_then_return(dealer_id, exclude):
        # A return arrives between reading the stock and accepting.
        await uow.ledgers.bump({A})
        return await original(dealer_id, exclude)

    uow.flow_rows.movements = movements_then_return
    assert await validate_next(deps)
    assert (await uploads.get_upload(upload.id, who=HQ, uow=uow, scopes=deps.scopes)
            ).status == UploadStatus.QUEUED
    uow.flow_rows.movements = original
    assert await validate_next(deps)
    assert (await uploads.get_upload(upload.id, who=HQ, uow=uow, scopes=deps.scopes)
            ).status == UploadStatus.ACCEPTED


async def test_broken_streams_keep_nothing_and_repeats_return_the_first_upload(env):
    uow, _, _, deps = env
    await seed(deps)
    content = csv_file([row()])
    with pytest.raises(InvalidArgument, match="cut short"):
        await submit(deps, A, content, size_bytes=len(content) + 10)
    with pytest.raises(InvalidArgument, match="SHA-256"):
        await submit(deps, A, content, sha256="0" * 64)
    with pytest.raises(InvalidArgument, match="empty"):
        await submit(deps, A, b"")
    assert uow.uploads.items == {} and not uow.blobs.items
    first = await submit(deps, A, content, client_request_id="k1")
    again = await submit(deps, A, content, client_request_id="k1")
    assert again.id == first.id and len(uow.uploads.items) == 1
    with pytest.raises(NotFound):
        await submit(deps, B, content, who=STAFF[A])


@pytest.mark.parametrize(("content", "message"), [
    (b"\n\n\n", "no header row"),
    (csv_file([]), "no data rows"),
    (csv_file([["x", "y"]], header=["foo", "bar"]), "missing required columns"),
    ("销售日期,医院名称,批号,产品编码,数量\n2026-03-05,瑞金医院,L1,A-001,1\n".encode()
     + "2026-03-05,瑞金医院,L1,A-001,1\n".encode("gbk"), "mixes encodings"),
    (b"PK\x03\x04 not really a zip", "not a readable XLSX"),
    (bytes(range(256)) * 40, ""),
])
async def test_files_that_cannot_be_read_fail_with_a_clear_message(env, content, message):
    uow, _, _, deps = env
    await seed(deps)
    upload = await run(deps, A, content)
    assert upload.status == UploadStatus.FAILED
    assert message in upload.failure_message
    assert uow.published_of(FLOW_UPLOAD_REJECTED)


async def test_gbk_files_headers_in_english_and_saved_mappings(env):
    _uow, _, _, deps = env
    await seed(deps)
    gbk = csv_file([row()], encoding="gbk")
    assert (await run(deps, A, gbk)).status == UploadStatus.ACCEPTED
    english = csv_file([["2026-03-06", "中山医院", "A-001", "L1", "1"]],
                       header=["Sale Date", "Hospital", "Product Code", "Lot", "Qty"])
    assert (await run(deps, A, english)).status == UploadStatus.ACCEPTED
    odd = csv_file([["2026-03-07", "中山医院", "A-001", "L1", "1"]],
                   header=["开单日", "终端", "物料", "批", "数"])
    mapping = tuple(MappingEntry(column, header) for column, header in (
        (FlowColumn.SOLD_ON, "开单日"), (FlowColumn.CUSTOMER_NAME, "终端"),
        (FlowColumn.PRODUCT_CODE, "物料"), (FlowColumn.BATCH, "批"), (FlowColumn.QUANTITY, "数")))
    assert (await run(deps, A, odd, mapping=mapping)).status == UploadStatus.ACCEPTED
    # The mapping is remembered for the dealer's next file.
    odd_again = csv_file([["2026-03-08", "中山医院", "A-001", "L1", "1"]],
                         header=["开单日", "终端", "物料", "批", "数"])
    assert (await run(deps, A, odd_again)).status == UploadStatus.ACCEPTED


async def test_the_error_report_is_the_file_with_reasons_and_no_formulas(env):
    _, _, _, deps = env
    await seed(deps)
    content = csv_file([row(), row(hospital="=HYPERLINK(\"http://x\")"), row(quantity="-3")])
    upload = await run(deps, A, content)
    name, content_type, report = await results.error_report(upload.id, False, who=STAFF[A],
                                                            deps=deps)
    assert name.endswith(".xlsx") and "spreadsheetml" in content_type
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(report), read_only=True).worksheets[0]
    cells = [list(values) for values in sheet.iter_rows(values_only=True)]
    assert cells[0][-1] == results.ERROR_COLUMN
    assert cells[1][-1] is None
    assert cells[2][1] == "'=HYPERLINK(\"http://x\")" and "医院" in cells[2][-1]
    assert cells[3][8] == "'-3"
    assert all(not str(v).startswith(("=", "+", "-", "@")) for line in cells for v in line if v)
    with pytest.raises(NotFound):
        await results.error_report(upload.id, False, who=STAFF[B], deps=deps)
    _, _, text = await results.error_report(upload.id, True, who=STAFF[A], deps=deps)
    assert text.startswith("\ufeff".encode()) and results.ERROR_COLUMN.encode() in text


async def test_a_merged_customer_is_sold_to_under_the_customer_it_was_folded_into(env):
    """HQ folds 中山医院 into 瑞金医院 (say a data-entry duplicate): the old name now names
    the kept hospital, the grant made for the old one authorizes sales to the kept one,
    and sell-through accepted before the merge is reported under the kept hospital."""
    uow, clock, scopes, _ = env
    deps = make_deps(uow, clock, scopes, authorization_lines=frozenset({"A系列"}))
    await seed(deps)
    await projections.apply_authorization(Authorization(
        "g1", A, "c-zhongshan", product_line="A系列",
        valid_from=date(2026, 1, 1), valid_to=date(2026, 12, 31)), uow=deps.uow())
    before = await run(deps, A, csv_file([row(hospital="中山医院", day="2026-03-05")]))
    assert before.status == UploadStatus.ACCEPTED, await codes_of(deps, before.id)

    kept = Customer("c-ruijin", "上海交通大学医学院附属瑞金医院", "上海交通大学瑞金医院",
                    "310100", ("瑞金医院", "复旦大学附属中山医院"))
    # The directory each replica keeps refreshes by wall-clock watermark.
    await projections.apply_customer_merge(kept, "c-zhongshan", datetime.now(UTC),
                                           uow=deps.uow())

    assert {r.customer_id for r in uow.flow_rows.active()} == {"c-ruijin"}
    after = await run(deps, A, csv_file([row(hospital="复旦大学附属中山医院", day="2026-03-06")]))
    assert after.status == UploadStatus.ACCEPTED, await codes_of(deps, after.id)
    rows = [r for e in uow.published_of(FLOW_UPLOAD_ACCEPTED) for r in e.rows
            if e.upload_id == after.id]
    assert {r.customer_id for r in rows} == {"c-ruijin"}
