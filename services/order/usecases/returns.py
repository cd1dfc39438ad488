"""Returns, as handlers: the dealer requests by batch (and serial), never more than it
received of the batch minus what is returned or claimed already; HQ approves or
rejects; the ERP confirms what came back (channel inventory adjusts); a credit note
(ingest, with return_id) closes it."""

from __future__ import annotations

from dataclasses import replace

from services.order import messages
from services.order.domain.ingest import ERP
from services.order.domain.returns import (
    RETURN_DECIDERS,
    ProductReturn,
    ReceivedLine,
    ReturnLine,
    ReturnQuery,
    ReturnRepeated,
    ReturnRequest,
    ReturnStatus,
    check_return_lines,
    received_violations,
)
from services.order.usecases.common import day, require_role, visible
from services.order.usecases.ports import OrderUnitOfWork
from shared.clock import Clock
from shared.context import Principal
from shared.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    collect,
)
from shared.events.order import RETURN_APPROVED, RETURN_RECEIVED, RETURN_REJECTED, RETURN_REQUESTED
from shared.ids import IdSource
from shared.pagination import Page, PageRequest
from shared.scope import Scopes


async def _return_in_scope(uow: OrderUnitOfWork, scopes: Scopes, who: Principal,
                           return_id: str, action: str, *,
                           for_update: bool = False) -> ProductReturn:
    scope = await scopes.resolve(who, action)
    found = await uow.returns.get(return_id, for_update=for_update)
    if found is None or not scope.allows(found.dealer_id):
        raise NotFound(f"return {return_id} not found")
    return found


async def request_return(request: ReturnRequest, *, who: Principal, uow: OrderUnitOfWork,
                         clock: Clock, ids: IdSource, scopes: Scopes) -> ProductReturn:
    """A client request id given again answers the return it made."""
    dealer_id = request.dealer_id or who.dealer_id
    if dealer_id:
        (await scopes.resolve(who, "order.return")).require(dealer_id)
    if not (who.is_dealer_staff or who.has_role("hq_admin", "customer_service")):
        raise PermissionDenied("only the dealer's staff (or HQ for them) request returns")
    violations = []
    if not dealer_id:
        violations.append(FieldViolation("dealer_id", "is required"))
    if not request.reason.strip():
        violations.append(FieldViolation("reason", "is required"))
    if len(request.client_request_id) > 64:
        violations.append(FieldViolation("client_request_id", "at most 64 characters"))
    collect(violations)
    lines = request.lines
    client_id = request.client_request_id or ids.new_id().replace("-", "")
    try:
        async with uow:
            existing = await uow.returns.by_request(dealer_id, client_id)
            if existing is not None:
                return existing
            collect(check_return_lines(lines, await uow.returns.batch_stock(dealer_id, lines)))
            catalog = await uow.products.catalog({line.product_code for line in lines})
            expiry = await uow.stock.expiries(dealer_id)
            created = ProductReturn(
                id=ids.new_id(), dealer_id=dealer_id, selling_company=request.selling_company,
                status=ReturnStatus.REQUESTED, reason=request.reason.strip()[:500],
                client_request_id=client_id, requested_at=clock.now(),
                requested_by=who.subject,
                lines=[ReturnLine(
                    line_no=index + 1, product_code=line.product_code,
                    gtin=catalog[line.product_code].gtin, batch=line.batch,
                    expiry_date=expiry.get((line.product_code, line.batch), ""),
                    serials=line.serials, quantity_requested=line.quantity,
                    shipment_id=line.shipment_id)
                    for index, line in enumerate(lines)])
            await uow.returns.add(created)
            uow.events.record(RETURN_REQUESTED, messages.return_requested(created), created.id)
            await uow.commit()
    except ReturnRepeated:
        async with uow.read():
            existing = await uow.returns.by_request(dealer_id, client_id)
        if existing is None:
            raise
        return existing
    return created


async def decide_return(return_id: str, approve: bool, text: str, *, who: Principal,
                        uow: OrderUnitOfWork, clock: Clock, scopes: Scopes) -> ProductReturn:
    if not approve and not text.strip():
        raise InvalidArgument.field("reason", "is required to reject a return")
    async with uow:
        found = await _return_in_scope(uow, scopes, who, return_id, "return.approve")
        require_role(who, RETURN_DECIDERS, "approve or reject returns")
        decided = replace(found, status=ReturnStatus.APPROVED if approve
                          else ReturnStatus.REJECTED, decided_at=clock.now(),
                          decided_by=who.subject, decision_note=text.strip()[:500])
        if not await uow.returns.decide(decided):
            raise FailedPrecondition(f"return {return_id} is not awaiting a decision",
                                     reason="NOT_REQUESTED")
        if approve:
            uow.events.record(RETURN_APPROVED, messages.return_approved(decided), return_id)
        else:
            uow.events.record(RETURN_REJECTED, messages.return_rejected(decided), return_id)
        await uow.commit()
    return decided


async def confirm_return_received(return_id: str, received_on: str,
                                  given: list[ReceivedLine], *, who: Principal,
                                  uow: OrderUnitOfWork, clock: Clock,
                                  scopes: Scopes) -> ProductReturn:
    """What the ERP received of an approved return (a line not listed came back whole):
    it leaves the dealer's channel inventory and, for a return naming its shipment, is
    counted as returned on the order lines it was shipped on."""
    require_role(who, ERP, "confirm returned goods")
    received_on = day(received_on, "received_on")
    async with uow:
        found = await _return_in_scope(uow, scopes, who, return_id, "order.read",
                                       for_update=True)
        if found.status != ReturnStatus.APPROVED:
            raise FailedPrecondition(
                f"return {found.id} is {ReturnStatus(found.status).name.lower()}, not approved",
                reason="NOT_APPROVED")
        lines = {line.line_no: line for line in found.lines}
        collect(received_violations(given, lines))
        quantities = {item.line_no: item.quantity_received for item in given}
        moment = clock.now()
        back: dict[tuple[str, str], int] = {}
        for line_no, line in lines.items():
            line.quantity_received = quantities.get(line_no, line.quantity_requested)
            if line.quantity_received and line.shipment_id:
                await _count_returned_on_order(uow, found.dealer_id, line)
            if line.quantity_received:
                key = (line.product_code, line.batch)
                back[key] = back.get(key, 0) + line.quantity_received
        await uow.stock.adjust(found.dealer_id, {key: (0, q) for key, q in back.items()},
                               moment)
        found.status = ReturnStatus.RECEIVED
        found.received_on = received_on
        await uow.returns.save(found)
        uow.events.record(RETURN_RECEIVED, messages.return_received(found), found.id)
        await uow.commit()
    return found


async def _count_returned_on_order(uow: OrderUnitOfWork, dealer_id: str,
                                   line: ReturnLine) -> None:
    """A return that names its shipment is counted on the order lines it came from
    (quantity_returned), the earliest shipment lines first."""
    left = line.quantity_received
    for shipped in await uow.shipments.lines_of_batch(line.shipment_id, dealer_id,
                                                      line.product_code, line.batch):
        if left <= 0:
            break
        take = min(left, shipped.quantity)
        await uow.orders.add_to_line(shipped.order_id, shipped.order_line_no,
                                     quantity_returned=take)
        left -= take


async def get_return(return_id: str, *, who: Principal, uow: OrderUnitOfWork,
                     scopes: Scopes) -> ProductReturn:
    async with uow.read():
        return await _return_in_scope(uow, scopes, who, return_id, "order.read")


async def list_returns(query: ReturnQuery, page: PageRequest, *, who: Principal,
                       uow: OrderUnitOfWork, scopes: Scopes) -> Page[ProductReturn]:
    dealers = visible(await scopes.resolve(who, "order.read"), query.dealer_id)
    if dealers is not None and not dealers:
        return Page([])
    async with uow.read():
        return await uow.returns.page(replace(query, dealer_ids=dealers), page)
