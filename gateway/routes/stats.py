"""Dashboard figures a phone or the console can chart, each computed by the service that
owns the facts and within the caller's scope: approved orders by region and month and
the dealer ranking (order), channel inventory by product (order), commissions and
rebates accrued against settled by month (incentive). Dealer and region names come from
identity, as far as the caller may see them."""

from __future__ import annotations

import calendar
import re
from collections import defaultdict
from typing import Annotated, Literal

import grpc
from fastapi import APIRouter, Query
from qudao.common.v1 import page_pb2
from qudao.flow.v1 import flow_pb2
from qudao.identity.v1 import identity_pb2
from qudao.incentive.v1 import incentive_pb2
from qudao.order.v1 import order_pb2

from gateway.clients import call
from gateway.protojson import to_json
from gateway.routes.common import Caller, Services
from shared.errors import InvalidArgument

router = APIRouter(prefix="/api/v1/stats", tags=["stats"])

Month = Annotated[str, Query(max_length=7, description="YYYY-MM, inclusive")]
MONTH = re.compile(r"^(\d{4}-(0[1-9]|1[0-2]))?$")
ORG_PAGE = 500


def _months(from_month: str, to_month: str) -> tuple[str, str]:
    for field, value in (("from_month", from_month), ("to_month", to_month)):
        if not MONTH.match(value):
            raise InvalidArgument.field(field, f"expected YYYY-MM, got {value!r}")
    return from_month, to_month


async def _org_units(services, kind: int,
                     ids: list[str] | None = None) -> list[identity_pb2.OrgUnit]:
    """Every org unit of a kind the caller may see, or only those of ``ids`` (a dealer
    sees itself; a caller who may not list regions gets none and sees region codes)."""
    units, token = [], ""
    try:
        while True:
            page = await call(services.identity.ListOrgUnits, identity_pb2.ListOrgUnitsRequest(
                kind=kind, ids=ids or (),
                page=page_pb2.PageRequest(page_size=ORG_PAGE, page_token=token)))
            units += page.org_units
            token = page.page.next_page_token
            if not token:
                return units
    except grpc.aio.AioRpcError as error:
        if error.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.NOT_FOUND):
            return units
        raise


async def region_names(services) -> dict[str, str]:
    """Region code → region name, for the regions the caller may see."""
    regions = await _org_units(services, identity_pb2.ORG_UNIT_KIND_REGION)
    return {unit.region_code: unit.name for unit in regions if unit.region_code}


async def _dealers(services, ids: list[str] | None = None) -> dict[str, identity_pb2.OrgUnit]:
    """The dealers the caller may see, or those of ``ids`` (at most ORG_PAGE): naming a
    chart's ten dealers need not list five thousand."""
    return {unit.id: unit for unit in await _org_units(
        services, identity_pb2.ORG_UNIT_KIND_DEALER, ids)}


def _money(minor: int, currency: str = "CNY") -> dict:
    return {"amount_minor": minor, "currency": currency}


def _sold_between(first: str, last: str) -> tuple[str, str]:
    """The days a month range covers, "YYYY-MM-DD" (empty stays unbounded)."""
    end = ""
    if last:
        year, month = map(int, last.split("-"))
        end = f"{last}-{calendar.monthrange(year, month)[1]:02d}"
    return (f"{first}-01" if first else ""), end


@router.get("/orders")
async def order_stats(caller: Caller, services: Services, from_month: Month = "",
                      to_month: Month = "", region_code: str = "",
                      group_by: list[Literal["region", "month", "dealer"]] = Query(  # noqa: B008
                          default=["region", "month"])) -> dict:
    """Approved orders (count and amount) and accepted sell-through to customers
    (quantity and amount) grouped by region, month and/or dealer; each row names its
    region (``label``) and, grouped by dealer, the dealer."""
    first, last = _months(from_month, to_month)
    orders = await call(services.order.GetOrderStats, order_pb2.GetOrderStatsRequest(
        from_month=first, to_month=last))
    sold_from, sold_to = _sold_between(first, last)
    sales = await call(services.flow.GetFlowStats, flow_pb2.GetFlowStatsRequest(
        query=flow_pb2.FlowRowQuery(sold_from=sold_from, sold_to=sold_to)))
    dealers = await _dealers(services)
    regions = await region_names(services)
    # key → [orders, order amount, units sold, sales amount]
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    facts = [(row.dealer_id, row.month, (row.order_count, row.order_amount.amount_minor, 0, 0))
             for row in orders.rows]
    facts += [(row.dealer_id, row.month, (0, 0, row.quantity, row.amount.amount_minor))
              for row in sales.rows]
    for dealer_id, month, figures in facts:
        dealer = dealers.get(dealer_id)
        region = dealer.region_code if dealer else ""
        if region_code and region != region_code:
            continue
        key = (region if "region" in group_by else "", month if "month" in group_by else "",
               dealer_id if "dealer" in group_by else "")
        totals[key] = [a + b for a, b in zip(totals[key], figures, strict=True)]
    rows = []
    for (region, month, dealer_id), (count, amount, units, sold) in sorted(totals.items()):
        entry = {"region_code": region, "label": regions.get(region, region), "month": month,
                 "order_count": count, "order_amount": _money(amount),
                 "sell_through_quantity": units, "sell_through_amount": _money(sold)}
        if dealer_id:
            entry |= {"dealer_id": dealer_id,
                      "name": dealers[dealer_id].name if dealer_id in dealers else dealer_id}
        rows.append(entry)
    return {"rows": rows}


@router.get("/dealer-ranking")
async def dealer_ranking(caller: Caller, services: Services, from_month: Month = "",
                         to_month: Month = "",
                         metric: Literal["order_amount", "order_count"] = "order_amount",
                         limit: Annotated[int, Query(ge=1, le=100)] = 10) -> dict:
    """The dealers in scope with the most approved orders (by amount or count)."""
    first, last = _months(from_month, to_month)
    stats = await call(services.order.GetOrderStats, order_pb2.GetOrderStatsRequest(
        from_month=first, to_month=last))
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in stats.rows:
        totals[row.dealer_id][0] += row.order_count
        totals[row.dealer_id][1] += row.order_amount.amount_minor
    index = 1 if metric == "order_amount" else 0
    top = sorted(totals.items(), key=lambda item: (-item[1][index], item[0]))[:limit]
    dealers = await _dealers(services, [dealer_id for dealer_id, _ in top]) if top else {}
    return {"metric": metric, "dealers": [
        {"dealer_id": dealer_id, "name": dealers[dealer_id].name if dealer_id in dealers
         else dealer_id, "region_code": dealers[dealer_id].region_code
         if dealer_id in dealers else "", "order_count": count,
         "order_amount": _money(amount)} for dealer_id, (count, amount) in top]}


@router.get("/channel-inventory")
async def channel_inventory_stats(caller: Caller, services: Services, dealer_id: str = "",
                                  product_line: str = "",
                                  group_by: Literal["product", "dealer"] = "product") -> dict:
    """Channel inventory per product (or per dealer × product) over the dealers and
    batches in scope: received, sold (accepted sell-through), returned and on hand."""
    stats = await call(services.order.GetChannelInventoryStats,
                       order_pb2.GetChannelInventoryStatsRequest(
                           dealer_id=dealer_id, product_line=product_line,
                           by_dealer=group_by == "dealer"))
    return {"products": [to_json(product) | {"name": product.product_name}
                         for product in stats.products]}


@router.get("/rebates")
async def rebate_stats(caller: Caller, services: Services, from_month: Month = "",
                       to_month: Month = "",
                       group_by: Literal["month", "dealer"] = "month") -> dict:
    """Commissions and rebates accrued per month (or per dealer), and how much of it is
    already frozen into settlements."""
    first, last = _months(from_month, to_month)
    grouping = (incentive_pb2.REPORT_GROUPING_DEALER if group_by == "dealer"
                else incentive_pb2.REPORT_GROUPING_PERIOD)
    report = await call(services.incentive.GetIncentiveReport,
                        incentive_pb2.GetIncentiveReportRequest(
                            group_by=grouping, from_month=first, to_month=last))
    rows = []
    for row in sorted(report.rows, key=lambda r: r.key):
        accrued = row.commission.amount_minor + row.rebate.amount_minor
        rows.append({group_by if group_by == "month" else "dealer_id": row.key,
                     "commission": _money(row.commission.amount_minor),
                     "rebate": _money(row.rebate.amount_minor), "accrued": _money(accrued),
                     "settled": _money(row.settled.amount_minor),
                     "dealer_count": row.dealer_count})
    return {"months" if group_by == "month" else "dealers": rows}
