"""The incentive repositories over SQL: domain objects in, domain objects out. Sums that
run over many rows (volumes, booked lines, report totals) are computed by the database."""

from __future__ import annotations

from dataclasses import asdict, fields
from datetime import date, datetime

from sqlalchemy import (
    String,
    and_,
    bindparam,
    case,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.incentive.adapters.orm import (
    AccrualRow,
    AssignmentRow,
    ClosedMonthRow,
    CommissionRuleRow,
    DealerRow,
    DiversionRow,
    LeadEventRow,
    OrderRow,
    ProductRow,
    ProgramMemberRow,
    ProgramVersionRow,
    RegistrationRow,
    ReturnRow,
    SaleRow,
    SettlementPeriodRow,
    SettlementRow,
    ShipmentLinkRow,
    SupersededUploadRow,
    TargetRow,
    UploadPartRow,
)
from services.incentive.domain.accruals import (
    Accrual,
    AccrualFilter,
    AccrualKind,
    Amounts,
    LineKey,
    Lines,
    UnitType,
)
from services.incentive.domain.commission import (
    CommissionBase,
    CommissionRule,
    CustomerSource,
    Override,
    UnregisteredPolicy,
)
from services.incentive.domain.dealers import Dealer
from services.incentive.domain.facts import (
    Diversion,
    DiversionStatus,
    LeadEvent,
    Order,
    OrderLine,
    Ownership,
    Registration,
    Return,
    ReturnLine,
    Sale,
    ShippedLine,
    UploadPart,
    lead_spans,
)
from services.incentive.domain.periods import Period, PeriodKind
from services.incentive.domain.programs import Program, ProgramStatus
from services.incentive.domain.settlement import (
    LineKind,
    Settlement,
    SettlementPeriod,
    SettlementStatus,
    StatementLine,
)
from services.incentive.domain.targets import Target, TargetMeasure
from services.incentive.domain.tiers import Basis, Mode, Scheme, Threshold, Tier, Volume
from shared.clock import aware
from shared.db import fetch_page
from shared.errors import AlreadyExists
from shared.pagination import Page, PageRequest

_KEY_COLUMNS = (AccrualRow.kind, AccrualRow.dealer_id, AccrualRow.selling_company,
                AccrualRow.period_start, AccrualRow.period_end, AccrualRow.unit_type,
                AccrualRow.unit_id, AccrualRow.scheme_id, AccrualRow.scheme_version,
                AccrualRow.customer_source, AccrualRow.product_line, AccrualRow.tier,
                AccrualRow.rate_bps, AccrualRow.currency)


def _key(values) -> LineKey:
    (kind, dealer, company, start, end, unit_type, unit_id, scheme, version, source, line,
     tier, rate, currency) = values
    return LineKey(AccrualKind(kind), dealer, company, start, end, UnitType(unit_type),
                   unit_id, scheme, version, source, line, tier, rate, currency)


def _accrual(row: AccrualRow) -> Accrual:
    return Accrual(row.id, _key([getattr(row, c.key) for c in _KEY_COLUMNS]),
                   Amounts(row.base_minor, row.quantity, row.amount_minor), row.cause,
                   row.cause_id, aware(row.recorded_at), row.settlement_period_id or "",
                   row.adjustment)


# An accrual as plain columns: reading thousands of them (a close) skips the ORM.
_ACCRUAL_COLUMNS = (*_KEY_COLUMNS, AccrualRow.base_minor, AccrualRow.quantity,
                    AccrualRow.amount_minor, AccrualRow.cause, AccrualRow.cause_id,
                    AccrualRow.recorded_at, AccrualRow.settlement_period_id,
                    AccrualRow.adjustment, AccrualRow.id)


def _accrual_of(values) -> Accrual:
    (*key, base, quantity, amount, cause, cause_id, recorded_at, period_id, adjustment,
     accrual_id) = values
    return Accrual(accrual_id, _key(key), Amounts(base, quantity, amount), cause, cause_id,
                   aware(recorded_at), period_id or "", bool(adjustment))


def _where(which: AccrualFilter) -> list:
    conditions = []
    if which.dealer_ids is not None:
        conditions.append(AccrualRow.dealer_id.in_(sorted(which.dealer_ids)))
    if which.source_id:
        conditions.append(or_(AccrualRow.unit_id == which.source_id,
                              AccrualRow.unit_id.like(which.source_id.replace("%", "")
                                                      .replace("_", "\\_") + "#%",
                                                      escape="\\")))
    if which.kind is not None:
        conditions.append(AccrualRow.kind == which.kind.value)
    if which.scheme_id:
        conditions.append(AccrualRow.scheme_id == which.scheme_id)
    if which.settlement_id:
        conditions.append(AccrualRow.settlement_period_id == which.settlement_id)
    if which.period_start is not None:
        conditions.append(AccrualRow.period_start >= which.period_start)
    if which.period_end is not None:
        conditions.append(AccrualRow.period_end <= which.period_end)
    if which.recorded_after is not None:
        conditions.append(AccrualRow.recorded_at >= which.recorded_after)
    if which.recorded_before is not None:
        conditions.append(AccrualRow.recorded_at < which.recorded_before)
    return conditions


def _memo(session: AsyncSession, table: str) -> dict | None:
    """Reads of ``table`` kept for the rest of the transaction (the events after the
    first of a consumer's batch ask the same), or None once the transaction wrote the
    table: from then on it is read every time, so a rolled-back savepoint never leaves
    a memo of rows that never were."""
    memos = session.info.setdefault("incentive.memos", {})
    if table not in memos:
        memos[table] = {}
    return memos[table]


def _wrote(session: AsyncSession, table: str) -> None:
    session.info.setdefault("incentive.memos", {})[table] = None


class SqlAccruals:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_all(self, accruals: list[Accrual]) -> None:
        if not accruals:
            return
        await self.session.execute(_INSERT_ACCRUAL, [
            {**{c.key: getattr(a.key, c.key) for c in _KEY_COLUMNS},
             "kind": a.key.kind.value, "unit_type": a.key.unit_type.value,
             "id": a.id, "base_minor": a.amounts.base_minor, "quantity": a.amounts.quantity,
             "amount_minor": a.amounts.amount_minor, "cause": a.cause[:40],
             "cause_id": a.cause_id[:160], "recorded_at": a.recorded_at,
             "settlement_period_id": a.settlement_id or None, "adjustment": a.adjustment}
            for a in accruals])

    async def get(self, accrual_id: str) -> Accrual | None:
        row = await self.session.get(AccrualRow, accrual_id)
        return _accrual(row) if row else None

    async def _sums(self, *conditions) -> list:
        return (await self.session.execute(
            select(*_KEY_COLUMNS, func.sum(AccrualRow.base_minor),
                   func.sum(AccrualRow.quantity), func.sum(AccrualRow.amount_minor))
            .where(*conditions).group_by(*_KEY_COLUMNS))).all()

    async def booked(self, unit_type: UnitType, unit_ids: list[str]) -> dict[str, Lines]:
        held: dict[str, Lines] = {}
        for start in range(0, len(unit_ids), 500):
            chunk = unit_ids[start:start + 500]
            for row in (await self.session.execute(
                    _BOOKED, {"unit_type": unit_type.value, "unit_ids": chunk})).all():
                key = _key(row[:14])
                held.setdefault(key.unit_id, {})[key] = Amounts(*(int(v) for v in row[14:]))
        return held

    async def booked_rebates(self, program_id: str, period_start: date) -> Lines:
        return {_key(row[:14]): Amounts(*(int(v) for v in row[14:])) for row in await self._sums(
            AccrualRow.unit_type == UnitType.REBATE.value, AccrualRow.scheme_id == program_id,
            AccrualRow.period_start == period_start)}

    async def page(self, which: AccrualFilter, page: PageRequest) -> Page[Accrual]:
        query = (select(AccrualRow).where(*_where(which))
                 .order_by(AccrualRow.recorded_at.desc(), AccrualRow.id))
        return (await fetch_page(self.session, query, page, count=True, keyset=True)).map(_accrual)

    async def matching(self, which: AccrualFilter) -> list[Accrual]:
        rows = await self.session.execute(select(*_ACCRUAL_COLUMNS).where(*_where(which))
                                          .order_by(AccrualRow.recorded_at, AccrualRow.id))
        return [_accrual_of(row) for row in rows]

    async def unfrozen_periods(self, company: str) -> list[tuple[date, date]]:
        return [tuple(row) for row in (await self.session.execute(
            select(AccrualRow.period_start, AccrualRow.period_end).distinct().where(
                AccrualRow.selling_company == company,
                AccrualRow.settlement_period_id.is_(None)))).all()]

    async def freeze(self, company: str, periods: list[tuple[date, date]], period_id: str,
                     adjustment: bool) -> None:
        await self.session.execute(
            update(AccrualRow).where(
                AccrualRow.selling_company == company, AccrualRow.settlement_period_id.is_(None),
                or_(*(and_(AccrualRow.period_start == s, AccrualRow.period_end == e)
                      for s, e in periods)))
            .values(settlement_period_id=period_id, adjustment=adjustment)
            .execution_options(synchronize_session=False))

    async def frozen(self, period_id: str) -> list[Accrual]:
        rows = await self.session.execute(select(*_ACCRUAL_COLUMNS).where(
            AccrualRow.settlement_period_id == period_id))
        return [_accrual_of(row) for row in rows]

    async def totals(self, dealer_ids, start, end):
        month = func.substr(func.cast(AccrualRow.period_start, String(10)), 1, 7)
        conditions = []
        if dealer_ids is not None:
            conditions.append(AccrualRow.dealer_id.in_(sorted(dealer_ids)))
        if start is not None:
            conditions.append(AccrualRow.period_start >= start)
        if end is not None:
            conditions.append(AccrualRow.period_start <= end)
        rows = (await self.session.execute(
            select(AccrualRow.dealer_id, month, AccrualRow.kind,
                   func.sum(AccrualRow.amount_minor),
                   func.sum(_settled_amount()), func.count())
            .where(*conditions).group_by(AccrualRow.dealer_id, month, AccrualRow.kind)
            .order_by(AccrualRow.dealer_id, month, AccrualRow.kind))).all()
        return [(d, m, k, int(a), int(s or 0), int(c)) for d, m, k, a, s, c in rows]


def _settled_amount():
    return case((AccrualRow.settlement_period_id.is_not(None), AccrualRow.amount_minor),
                else_=0)


class SqlSales:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_part(self, part: UploadPart, rows: list[Sale]) -> bool:
        if await self.session.get(UploadPartRow, (part.upload_id, part.part_index)):
            return False
        self.session.add(UploadPartRow(
            upload_id=part.upload_id, part_index=part.part_index, dealer_id=part.dealer_id,
            part_count=part.part_count, event_id=part.event_id,
            replaces_upload_id=part.replaces_upload_id))
        await self.session.flush()
        if rows:
            await self.session.execute(insert(SaleRow), [asdict(row) for row in rows])
        return True

    async def rows_of(self, upload_id: str, part_index: int) -> list[Sale]:
        rows = await self.session.scalars(select(SaleRow).where(
            SaleRow.upload_id == upload_id, SaleRow.part_index == part_index)
            .order_by(SaleRow.row_number))
        return [Sale(r.upload_id, r.part_index, r.row_number, r.dealer_id, r.customer_id,
                     r.product_code, r.product_line, r.batch, r.sold_on, r.quantity,
                     r.amount_minor, r.currency, r.transfer_to_dealer_id, r.gtin) for r in rows]

    async def parts_of(self, upload_id: str) -> list[UploadPart]:
        rows = await self.session.scalars(select(UploadPartRow).where(
            UploadPartRow.upload_id == upload_id).order_by(UploadPartRow.part_index))
        return [UploadPart(r.upload_id, r.part_index, r.dealer_id, r.part_count, r.event_id,
                           r.replaces_upload_id) for r in rows]

    async def supersede(self, upload_id: str, by_upload_id: str) -> bool:
        if await self.session.get(SupersededUploadRow, upload_id):
            return False
        self.session.add(SupersededUploadRow(upload_id=upload_id, superseded_by=by_upload_id))
        await self.session.flush()
        return True

    async def is_superseded(self, upload_id: str) -> bool:
        return await self.session.get(SupersededUploadRow, upload_id) is not None

    async def put_diversion(self, diversion: Diversion) -> None:
        await self.session.merge(DiversionRow(**asdict(diversion)))
        await self.session.flush()

    async def diversion(self, diversion_id: str) -> Diversion | None:
        row = await self.session.get(DiversionRow, diversion_id)
        return _diversion(row) if row else None

    async def diversions_of(self, dealer_ids: frozenset[str]) -> list[Diversion]:
        rows = await self.session.scalars(select(DiversionRow).where(
            DiversionRow.dealer_id.in_(sorted(dealer_ids))))
        return [_diversion(r) for r in rows]

    async def parts_with_batch(self, dealer_id: str, batch: str) -> list[tuple[str, int]]:
        return [tuple(r) for r in (await self.session.execute(
            select(SaleRow.upload_id, SaleRow.part_index).distinct().where(
                SaleRow.dealer_id == dealer_id, SaleRow.batch == batch)
            .order_by(SaleRow.upload_id, SaleRow.part_index))).all()]

    async def parts_selling(self, dealer_id: str, customer_id: str,
                            since: date) -> list[tuple[str, int]]:
        return [tuple(r) for r in (await self.session.execute(
            select(SaleRow.upload_id, SaleRow.part_index).distinct().where(
                SaleRow.dealer_id == dealer_id, SaleRow.customer_id == customer_id,
                SaleRow.sold_on >= since).order_by(SaleRow.upload_id, SaleRow.part_index))).all()]

    async def parts_between(self, start: date, end: date) -> list[tuple[str, int]]:
        return [tuple(r) for r in (await self.session.execute(
            select(SaleRow.upload_id, SaleRow.part_index).distinct().where(
                SaleRow.sold_on >= start, SaleRow.sold_on <= end)
            .order_by(SaleRow.upload_id, SaleRow.part_index))).all()]

    async def counted(self, dealer_ids, product_lines, product_codes, start, end,
                      currency) -> dict[str, dict[str, Volume]]:
        query = select(SaleRow.dealer_id, SaleRow.upload_id, SaleRow.part_index,
                       func.sum(SaleRow.quantity), func.sum(SaleRow.amount_minor)).where(
            *_counted_sales(dealer_ids, product_lines, product_codes, start, end, currency))
        found: dict[str, dict[str, Volume]] = {}
        for dealer, upload_id, part_index, quantity, amount in (await self.session.execute(
                query.group_by(SaleRow.dealer_id, SaleRow.upload_id, SaleRow.part_index)
                .order_by(SaleRow.dealer_id, SaleRow.upload_id, SaleRow.part_index))).all():
            found.setdefault(dealer, {})[f"{UnitType.FLOW.value}:{upload_id}#{part_index}"] = (
                Volume(int(quantity), int(amount)))
        return found


def _counted_sales(dealer_ids, product_lines, product_codes, start, end, currency) -> list:
    """The accepted sales a rebate or target counts (facts.counts, in SQL): measured
    products in the period and currency, not transfers, not replaced, not diverted."""
    # Diversion.matches, in SQL.
    diverted = exists().where(
        DiversionRow.dealer_id == SaleRow.dealer_id, DiversionRow.batch == SaleRow.batch,
        SaleRow.sold_on <= DiversionRow.detected_on,
        DiversionRow.status != DiversionStatus.DISMISSED,
        or_(and_(DiversionRow.product_code != "", SaleRow.product_code != "",
                 DiversionRow.product_code == SaleRow.product_code),
            and_(or_(DiversionRow.product_code == "", SaleRow.product_code == ""),
                 DiversionRow.gtin != "", DiversionRow.gtin == SaleRow.gtin)))
    replaced = exists().where(SupersededUploadRow.upload_id == SaleRow.upload_id)
    conditions = [
        SaleRow.sold_on >= start, SaleRow.sold_on <= end, SaleRow.currency == currency,
        SaleRow.transfer_to_dealer_id == "", SaleRow.quantity != 0, ~replaced, ~diverted,
        (SaleRow.product_code.in_(product_codes) if product_codes
         else SaleRow.product_line.in_(product_lines))]
    if dealer_ids is not None:
        conditions.append(SaleRow.dealer_id.in_(sorted(dealer_ids)))
    return conditions


def _diversion(row: DiversionRow) -> Diversion:
    return Diversion(row.id, row.upload_id, row.dealer_id, row.product_code, row.gtin,
                     row.batch, row.customer_id, row.sold_on, row.detected_on, row.status)


def _order(row: OrderRow) -> Order:
    return Order(row.order_id, row.dealer_id, row.selling_company,
                 tuple(OrderLine(*line) for line in row.lines), row.approved_on, row.voided,
                 row.currency)


def _return(row: ReturnRow) -> Return:
    return Return(row.return_id, row.dealer_id, row.selling_company, row.received_on,
                  tuple(ReturnLine(*line) for line in row.lines), row.currency)


def _shipped(row: ShipmentLinkRow) -> ShippedLine:
    return ShippedLine(row.shipment_id, row.line_no, row.product_code, row.batch, row.order_id,
                       row.order_line_no, row.quantity)


# Built once: every order event books through these (building them cost more than
# running them).
_INSERT_ACCRUAL = insert(AccrualRow.__table__)
_BOOKED = (select(*_KEY_COLUMNS, func.sum(AccrualRow.base_minor), func.sum(AccrualRow.quantity),
                  func.sum(AccrualRow.amount_minor))
           .where(AccrualRow.unit_type == bindparam("unit_type"),
                  AccrualRow.unit_id.in_(bindparam("unit_ids", expanding=True)))
           .group_by(*_KEY_COLUMNS))


class SqlOrders:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        # The order rows this unit of work read or wrote (None: known not to exist). The
        # session's identity map holds its rows weakly, so without these an order read,
        # stored and recomputed in one event would be read three times.
        self._rows: dict[str, OrderRow | None] = {}

    async def _row(self, order_id: str) -> OrderRow | None:
        if order_id not in self._rows:
            self._rows[order_id] = await self.session.get(OrderRow, order_id)
        return self._rows[order_id]

    async def get(self, order_id: str) -> Order | None:
        row = await self._row(order_id)
        return _order(row) if row else None

    async def put(self, order: Order) -> None:
        values = dict(
            dealer_id=order.dealer_id, selling_company=order.selling_company,
            approved_on=order.approved_on, voided=order.voided, currency=order.currency,
            lines=[[ln.line_no, ln.product_code, ln.product_line, ln.quantity, ln.amount_minor,
                    ln.quantity_closed] for ln in order.lines])
        row = await self._row(order.order_id)
        if row is None:
            row = self._rows[order.order_id] = OrderRow(order_id=order.order_id, **values)
            self.session.add(row)
        else:
            for name, value in values.items():
                setattr(row, name, value)
        await self.session.flush()

    async def counted(self, dealer_ids, start, end) -> list[Order]:
        query = select(OrderRow).where(OrderRow.approved_on >= start,
                                       OrderRow.approved_on <= end, OrderRow.voided.is_(False))
        if dealer_ids is not None:
            query = query.where(OrderRow.dealer_id.in_(sorted(dealer_ids)))
        return [_order(r) for r in await self.session.scalars(query)]

    async def of_dealer(self, dealer_id: str) -> list[Order]:
        return [_order(r) for r in await self.session.scalars(
            select(OrderRow).where(OrderRow.dealer_id == dealer_id).order_by(OrderRow.order_id))]

    async def get_return(self, return_id: str) -> Return | None:
        row = await self.session.get(ReturnRow, return_id)
        return _return(row) if row else None

    async def put_return(self, returned: Return) -> None:
        _wrote(self.session, "returns")
        self.session.add(ReturnRow(
            return_id=returned.return_id, dealer_id=returned.dealer_id,
            selling_company=returned.selling_company, received_on=returned.received_on,
            currency=returned.currency,
            lines=[[ln.line_no, ln.product_code, ln.quantity, ln.shipment_id, ln.batch]
                   for ln in returned.lines]))
        await self.session.flush()

    async def returns(self, dealer_ids, start, end) -> list[Return]:
        memo = _memo(self.session, "returns")
        key = (frozenset(dealer_ids) if dealer_ids is not None else None, start, end)
        if memo is not None and key in memo:
            return list(memo[key])
        query = select(ReturnRow).where(ReturnRow.received_on >= start,
                                        ReturnRow.received_on <= end)
        if dealer_ids is not None:
            query = query.where(ReturnRow.dealer_id.in_(sorted(dealer_ids)))
        found = [_return(r) for r in await self.session.scalars(
            query.order_by(ReturnRow.return_id))]
        if memo is not None:
            memo[key] = found
        return list(found)

    async def link_shipment(self, lines: list[ShippedLine]) -> None:
        for line in lines:
            await self.session.merge(ShipmentLinkRow(**asdict(line)))
        await self.session.flush()

    async def shipped_lines(self, shipment_id: str) -> list[ShippedLine]:
        return [_shipped(r) for r in await self.session.scalars(select(ShipmentLinkRow).where(
            ShipmentLinkRow.shipment_id == shipment_id).order_by(ShipmentLinkRow.line_no))]

    async def put_product(self, code, product_line, list_price_minor) -> None:
        await self.session.merge(ProductRow(code=code, product_line=product_line,
                                            list_price_minor=list_price_minor))

    async def product(self, code):
        row = await self.session.get(ProductRow, code)
        return (row.product_line, row.list_price_minor) if row else None

    async def units_between(self, start, end):
        orders = (await self.session.scalars(select(OrderRow.order_id).where(
            OrderRow.approved_on >= start, OrderRow.approved_on <= end)
            .order_by(OrderRow.order_id))).all()
        returns = (await self.session.scalars(select(ReturnRow.return_id).where(
            ReturnRow.received_on >= start, ReturnRow.received_on <= end)
            .order_by(ReturnRow.return_id))).all()
        return list(orders), list(returns)


class SqlOwnership:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def registration(self, registration_id: str) -> Registration | None:
        row = await self.session.get(RegistrationRow, registration_id)
        if row is None:
            return None
        return Registration(row.registration_id, row.dealer_id, row.customer_id,
                            row.product_line, CustomerSource(row.source), row.approved_on,
                            row.ended_on)

    async def put_registration(self, registration: Registration) -> None:
        values = asdict(registration)
        values["source"] = registration.source.value
        await self.session.merge(RegistrationRow(**values))
        await self.session.flush()

    async def add_lead_event(self, event: LeadEvent) -> bool:
        key = (event.lead_id, event.dealer_id, event.day, event.assigned)
        if await self.session.get(LeadEventRow, key):
            return False
        self.session.add(LeadEventRow(lead_id=event.lead_id, dealer_id=event.dealer_id,
                                      day=event.day, assigned=event.assigned,
                                      customer_id=event.customer_id,
                                      product_line=event.product_line))
        await self.session.flush()
        return True

    async def move_customer(self, from_id: str, to_id: str) -> list[Registration]:
        rows = (await self.session.scalars(select(RegistrationRow).where(
            RegistrationRow.customer_id == from_id))).all()
        await self.session.execute(update(RegistrationRow).where(
            RegistrationRow.customer_id == from_id).values(customer_id=to_id))
        await self.session.execute(update(LeadEventRow).where(
            LeadEventRow.customer_id == from_id).values(customer_id=to_id))
        return [Registration(r.registration_id, r.dealer_id, to_id, r.product_line,
                             CustomerSource(r.source), r.approved_on, r.ended_on)
                for r in rows]

    async def spans(self, dealer_id: str, customer_ids: set[str]) -> list[Ownership]:
        ids = sorted(customer_ids)
        spans = [Registration(r.registration_id, r.dealer_id, r.customer_id, r.product_line,
                              CustomerSource(r.source), r.approved_on, r.ended_on).span()
                 for r in await self.session.scalars(select(RegistrationRow).where(
                     RegistrationRow.dealer_id == dealer_id,
                     RegistrationRow.customer_id.in_(ids)))]
        leads = [LeadEvent(r.lead_id, r.dealer_id, r.customer_id, r.product_line, r.day,
                           r.assigned) for r in await self.session.scalars(
                               select(LeadEventRow).where(LeadEventRow.dealer_id == dealer_id))]
        return [s for s in spans if s] + [s for s in lead_spans(leads)
                                          if s.customer_id in customer_ids]


def _dealer(row: DealerRow) -> Dealer:
    return Dealer(row.id, row.name, row.region_code, row.tier, row.active,
                  tuple(row.product_lines or ()), tuple(row.division_codes or ()),
                  tuple(row.tags or ()), row.credit_code,
                  aware(row.updated_at) if row.updated_at else None)


class SqlDealers:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, dealer_id: str) -> Dealer | None:
        row = await self.session.get(DealerRow, dealer_id)
        return _dealer(row) if row else None

    async def put(self, dealer: Dealer) -> None:
        values = asdict(dealer)
        for name in ("product_lines", "division_codes", "tags"):
            values[name] = list(values[name])
        await self.session.merge(DealerRow(**values))
        await self.session.flush()

    async def by_credit_code(self, credit_code: str) -> Dealer | None:
        row = (await self.session.scalars(select(DealerRow).where(
            DealerRow.credit_code == credit_code))).first()
        return _dealer(row) if row else None

    async def all(self) -> list[Dealer]:
        return [_dealer(r) for r in await self.session.scalars(select(DealerRow))]

    async def assign(self, manager_user_id, dealer_id, product_line, assigned) -> None:
        if assigned:
            await self.session.merge(AssignmentRow(manager_user_id=manager_user_id,
                                                   dealer_id=dealer_id,
                                                   product_line=product_line))
        else:
            await self.session.execute(delete(AssignmentRow).where(
                AssignmentRow.manager_user_id == manager_user_id,
                AssignmentRow.dealer_id == dealer_id,
                AssignmentRow.product_line == product_line))

    async def managers(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for manager, dealer in (await self.session.execute(
                select(AssignmentRow.manager_user_id, AssignmentRow.dealer_id))).all():
            found.setdefault(dealer, set()).add(manager)
        return found


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _undate(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def rule_document(rule: CommissionRule) -> dict:
    return {"name": rule.name, "product_line": rule.product_line, "base": rule.base.value,
            "base_rate_bps": rule.base_rate_bps,
            "source_rates": {s.value: r for s, r in rule.source_rates.items()},
            "unregistered": rule.unregistered.value,
            "overrides": [{"rate_bps": o.rate_bps, "dealer_id": o.dealer_id,
                           "customer_id": o.customer_id, "product_code": o.product_code,
                           "source": o.source.value if o.source else None,
                           "valid_from": _day(o.valid_from), "valid_to": _day(o.valid_to),
                           "reason": o.reason} for o in rule.overrides],
            "valid_from": _day(rule.valid_from), "valid_to": _day(rule.valid_to),
            "active": rule.active,
            "updated_at": rule.updated_at.isoformat() if rule.updated_at else None,
            "updated_by": rule.updated_by}


def rule_from_document(rule_id: str, doc: dict) -> CommissionRule:
    return CommissionRule(
        id=rule_id, name=doc["name"], product_line=doc["product_line"],
        base=CommissionBase(doc["base"]), base_rate_bps=doc["base_rate_bps"],
        source_rates={CustomerSource(s): r for s, r in doc["source_rates"].items()},
        unregistered=UnregisteredPolicy(doc["unregistered"]),
        overrides=tuple(Override(o["rate_bps"], o["dealer_id"], o["customer_id"],
                                 o["product_code"],
                                 CustomerSource(o["source"]) if o["source"] else None,
                                 _undate(o["valid_from"]), _undate(o["valid_to"]), o["reason"])
                        for o in doc["overrides"]),
        valid_from=_undate(doc["valid_from"]), valid_to=_undate(doc["valid_to"]),
        active=doc["active"],
        updated_at=datetime.fromisoformat(doc["updated_at"]) if doc["updated_at"] else None,
        updated_by=doc["updated_by"])


class SqlRules:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def all(self) -> list[CommissionRule]:
        memo = _memo(self.session, "commission_rules")
        if memo is not None and "all" in memo:
            return list(memo["all"])
        rules = [rule_from_document(r.id, r.body) for r in await self.session.scalars(
            select(CommissionRuleRow).order_by(CommissionRuleRow.id))]
        if memo is not None:
            memo["all"] = rules
        return list(rules)

    async def get(self, rule_id: str) -> CommissionRule | None:
        row = await self.session.get(CommissionRuleRow, rule_id)
        return rule_from_document(row.id, row.body) if row else None

    async def put(self, rule: CommissionRule) -> None:
        _wrote(self.session, "commission_rules")
        await self.session.merge(CommissionRuleRow(id=rule.id, body=rule_document(rule)))
        await self.session.flush()


def program_document(program: Program) -> dict:
    return {"name": program.name, "product_lines": list(program.product_lines),
            "product_codes": list(program.product_codes), "period": program.period_kind.value,
            "start": _day(program.start), "end": _day(program.end),
            "effective_from": _day(program.effective_from), "basis": program.basis.value,
            "mode": program.scheme.mode.value, "threshold": program.scheme.threshold.value,
            "tiers": [[t.threshold, t.rate_bps, t.fixed_minor] for t in program.scheme.tiers],
            "cap": program.scheme.cap_minor, "currency": program.currency,
            "selling_company": program.selling_company, "description": program.description,
            "status": program.status.value,
            "created_at": program.created_at.isoformat() if program.created_at else None,
            "created_by": program.created_by}


def program_from_document(program_id: str, version: int, doc: dict, audience: bytes) -> Program:
    return Program(
        program_id, version, doc["name"], tuple(doc["product_lines"]),
        tuple(doc["product_codes"]), PeriodKind(doc["period"]), _undate(doc["start"]),
        _undate(doc["end"]), _undate(doc["effective_from"]), Basis(doc["basis"]),
        Scheme(Mode(doc["mode"]), Threshold(doc["threshold"]),
               tuple(Tier(*t) for t in doc["tiers"]), doc["cap"]),
        doc["currency"], doc["selling_company"], doc["description"], audience or b"",
        ProgramStatus(doc["status"]),
        datetime.fromisoformat(doc["created_at"]) if doc["created_at"] else None,
        doc["created_by"])


class SqlPrograms:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add_version(self, program: Program) -> None:
        self.session.add(ProgramVersionRow(program_id=program.id, version=program.version,
                                           body=program_document(program),
                                           audience=program.audience))
        await self.session.flush()

    async def versions(self, program_id: str) -> list[Program]:
        return [program_from_document(r.program_id, r.version, r.body, r.audience)
                for r in await self.session.scalars(select(ProgramVersionRow).where(
                    ProgramVersionRow.program_id == program_id)
                    .order_by(ProgramVersionRow.version))]

    async def all(self) -> dict[str, list[Program]]:
        found: dict[str, list[Program]] = {}
        for r in await self.session.scalars(select(ProgramVersionRow).order_by(
                ProgramVersionRow.program_id, ProgramVersionRow.version)):
            found.setdefault(r.program_id, []).append(
                program_from_document(r.program_id, r.version, r.body, r.audience))
        return found

    async def members(self, program_id: str) -> set[str]:
        return set((await self.session.scalars(select(ProgramMemberRow.dealer_id).where(
            ProgramMemberRow.program_id == program_id))).all())

    async def set_member(self, program_id: str, dealer_id: str, member: bool) -> None:
        _wrote(self.session, "program_members")
        if member:
            await self.session.merge(ProgramMemberRow(program_id=program_id,
                                                      dealer_id=dealer_id))
        else:
            await self.session.execute(delete(ProgramMemberRow).where(
                ProgramMemberRow.program_id == program_id,
                ProgramMemberRow.dealer_id == dealer_id))

    async def add_members(self, program_id: str, dealer_ids: set[str]) -> None:
        fresh = sorted(dealer_ids - await self.members(program_id))
        _wrote(self.session, "program_members")
        if fresh:
            await self.session.execute(insert(ProgramMemberRow), [
                {"program_id": program_id, "dealer_id": dealer_id} for dealer_id in fresh])

    async def programs_of(self, dealer_id: str) -> set[str]:
        memo = _memo(self.session, "program_members")
        if memo is not None and dealer_id in memo:
            return set(memo[dealer_id])
        found = set((await self.session.scalars(select(ProgramMemberRow.program_id).where(
            ProgramMemberRow.dealer_id == dealer_id))).all())
        if memo is not None:
            memo[dealer_id] = found
        return set(found)


def _target(row: TargetRow) -> Target:
    return Target(row.dealer_id, row.product_line,
                  Period.of(PeriodKind(row.period_kind), row.period_start),
                  TargetMeasure(row.measure), row.value, row.currency,
                  aware(row.updated_at) if row.updated_at else None, row.updated_by)


class SqlTargets:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def put(self, target: Target) -> bool:
        key = (target.dealer_id, target.product_line, target.period.start,
               target.period.kind.value, target.measure.value)
        created = await self.session.get(TargetRow, key) is None
        await self.session.merge(TargetRow(
            dealer_id=target.dealer_id, product_line=target.product_line,
            period_start=target.period.start, period_kind=target.period.kind.value,
            measure=target.measure.value, period_end=target.period.end, value=target.value,
            currency=target.currency, updated_at=target.updated_at,
            updated_by=target.updated_by))
        await self.session.flush()
        return created

    async def of(self, dealer_ids, period=None, product_line="") -> list[Target]:
        query = select(TargetRow)
        if dealer_ids is not None:
            query = query.where(TargetRow.dealer_id.in_(sorted(dealer_ids)))
        if period is not None:
            query = query.where(TargetRow.period_start >= period.start,
                                TargetRow.period_end <= period.end)
        if product_line:
            query = query.where(TargetRow.product_line == product_line)
        rows = await self.session.scalars(query.order_by(
            TargetRow.period_start, TargetRow.dealer_id, TargetRow.product_line))
        return [_target(r) for r in rows]


_LINE_FIELDS = tuple(f.name for f in fields(StatementLine))


def _line_document(line: StatementLine) -> dict:
    values = {name: getattr(line, name) for name in _LINE_FIELDS}
    values["kind"] = line.kind.value
    values["period_start"] = _day(line.period_start)
    values["period_end"] = _day(line.period_end)
    values["sources"] = list(line.sources)
    return values


def _line(doc: dict) -> StatementLine:
    values = dict(doc)
    values["kind"] = LineKind(doc["kind"])
    values["period_start"] = _undate(doc["period_start"])
    values["period_end"] = _undate(doc["period_end"])
    values["sources"] = tuple(doc["sources"])
    return StatementLine(**values)


def _settlement(row: SettlementRow) -> Settlement:
    return Settlement(row.id, row.settlement_period_id, row.dealer_id, row.selling_company,
                      Period.of(PeriodKind(row.period_kind), row.period_start),
                      SettlementStatus(row.status), tuple(_line(d) for d in row.lines),
                      row.total_minor, row.currency, aware(row.closed_at),
                      aware(row.settled_at) if row.settled_at else None, row.credit_id,
                      row.carried_forward_minor)


def _settlement_values(s: Settlement) -> dict:
    return dict(id=s.id, settlement_period_id=s.period_id, dealer_id=s.dealer_id,
                selling_company=s.selling_company, period_start=s.period.start,
                period_end=s.period.end, period_kind=s.period.kind.value,
                status=s.status.value, lines=[_line_document(ln) for ln in s.lines],
                total_minor=s.total_minor, currency=s.currency, closed_at=s.closed_at,
                settled_at=s.settled_at, credit_id=s.credit_id,
                carried_forward_minor=s.carried_forward_minor)


def _period(row: SettlementPeriodRow) -> SettlementPeriod:
    return SettlementPeriod(row.id, row.selling_company,
                            Period.of(PeriodKind(row.period_kind), row.period_start),
                            SettlementStatus(row.status), row.dealer_count, row.total_minor,
                            row.currency, aware(row.closed_at), row.closed_by,
                            aware(row.settled_at) if row.settled_at else None, row.settled_by)


def _period_values(p: SettlementPeriod) -> dict:
    return dict(id=p.id, selling_company=p.selling_company, period_start=p.period.start,
                period_end=p.period.end, period_kind=p.period.kind.value,
                status=p.status.value, dealer_count=p.dealer_count, total_minor=p.total_minor,
                currency=p.currency, closed_at=p.closed_at, closed_by=p.closed_by,
                settled_at=p.settled_at, settled_by=p.settled_by)


class SqlSettlements:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def closed_months(self, company: str | None = None) -> set[str]:
        query = select(ClosedMonthRow.month)
        if company is not None:
            query = query.where(ClosedMonthRow.selling_company == company)
        return set((await self.session.scalars(query)).all())

    async def close_months(self, company: str, months: list[str], period_id: str) -> None:
        try:
            async with self.session.begin_nested():
                await self.session.execute(insert(ClosedMonthRow), [
                    {"selling_company": company, "month": m, "settlement_period_id": period_id}
                    for m in months])
        except IntegrityError:
            raise AlreadyExists(f"{', '.join(months)}: already closed for {company}; a "
                                "period is settled once", reason="PERIOD_CLOSED") from None

    async def add_period(self, period: SettlementPeriod) -> None:
        self.session.add(SettlementPeriodRow(**_period_values(period)))
        await self.session.flush()

    async def put_period(self, period: SettlementPeriod) -> None:
        await self.session.merge(SettlementPeriodRow(**_period_values(period)))
        await self.session.flush()

    async def get_period(self, period_id: str) -> SettlementPeriod | None:
        row = await self.session.get(SettlementPeriodRow, period_id)
        return _period(row) if row else None

    async def periods(self, company: str, page: PageRequest) -> Page[SettlementPeriod]:
        query = select(SettlementPeriodRow).order_by(SettlementPeriodRow.period_start.desc(),
                                                     SettlementPeriodRow.id)
        if company:
            query = query.where(SettlementPeriodRow.selling_company == company)
        return (await fetch_page(self.session, query, page, count=True)).map(_period)

    async def add_settlements(self, settlements: list[Settlement]) -> None:
        if settlements:
            await self.session.execute(insert(SettlementRow),
                                       [_settlement_values(s) for s in settlements])

    async def put_settlement(self, settlement: Settlement) -> None:
        await self.session.merge(SettlementRow(**_settlement_values(settlement)))

    async def get(self, settlement_id: str) -> Settlement | None:
        row = await self.session.get(SettlementRow, settlement_id)
        return _settlement(row) if row else None

    async def of_period(self, period_id: str) -> list[Settlement]:
        return [_settlement(r) for r in await self.session.scalars(select(SettlementRow).where(
            SettlementRow.settlement_period_id == period_id).order_by(SettlementRow.dealer_id))]

    async def page(self, period_id, dealer_ids, status, page) -> Page[Settlement]:
        query = select(SettlementRow).order_by(SettlementRow.period_start.desc(),
                                               SettlementRow.dealer_id)
        if period_id:
            query = query.where(SettlementRow.settlement_period_id == period_id)
        if dealer_ids is not None:
            query = query.where(SettlementRow.dealer_id.in_(sorted(dealer_ids)))
        if status:
            query = query.where(SettlementRow.status == status)
        return (await fetch_page(self.session, query, page, count=True)).map(_settlement)

    async def find(self, dealer_id, start, end) -> Settlement | None:
        row = (await self.session.scalars(select(SettlementRow).where(
            SettlementRow.dealer_id == dealer_id, SettlementRow.period_start == start,
            SettlementRow.period_end == end))).first()
        return _settlement(row) if row else None
