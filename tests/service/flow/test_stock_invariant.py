"""Flow's own quantity bookkeeping, as a property: whatever sequence of shipments,
returns, sales, transfers to the sub-dealer and replacements arrives, accepted flow
never takes more out of a dealer's batch than reached it (received − returned +
transferred in), and what the repositories report equals a recomputation from the
accepted rows alone."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.flow.domain.model import (
    Customer,
    Dealer,
    Product,
    ShipmentLine,
    UploadStatus,
)
from services.flow.domain.rules import available
from services.flow.usecases import projections
from shared.context import Principal
from shared.testing import FakeClock, FakeScopes
from tests.service.flow.fakes import FakeFlowUnitOfWork, make_deps
from tests.service.flow.test_uploads import csv_file, row, run
from tests.world import gtin

P, S = "dealer-p", "dealer-s"
G = gtin(1)
BATCHES = ("L1", "L2")
SUB_NAME = "上海二级医疗器械有限公司"

steps = st.lists(st.one_of(
    st.tuples(st.just("ship"), st.sampled_from(BATCHES), st.integers(1, 6)),
    st.tuples(st.just("return"), st.sampled_from(BATCHES), st.integers(1, 3)),
    st.tuples(st.just("sell"), st.sampled_from((P, S)), st.sampled_from(BATCHES),
              st.integers(1, 5)),
    st.tuples(st.just("transfer"), st.sampled_from(BATCHES), st.integers(1, 5)),
    st.tuples(st.just("replace"), st.sampled_from(BATCHES), st.integers(0, 5)),
), min_size=1, max_size=12)


async def _world():
    uow = FakeFlowUnitOfWork()
    clock = FakeClock(datetime(2026, 3, 28, tzinfo=UTC))
    scopes = FakeScopes()
    hq = Principal(subject="user:hq", roles=frozenset({"hq_admin"}))
    scopes.allow(hq, all_dealers=True)
    for dealer in (P, S):
        scopes.allow(Principal(subject=f"user:{dealer}"), {dealer})
    deps = make_deps(uow, clock, scopes)
    await projections.apply_product(Product("A-001", G, "输液器", "A系列"), uow=uow)
    await projections.apply_dealer(Dealer(P, "上海平台医疗器械有限公司", is_platform=True,
                                          division_codes=("310000",)), uow=uow)
    await projections.apply_dealer(Dealer(S, SUB_NAME, platform_dealer_id=P,
                                          division_codes=("310000",)), uow=uow)
    await projections.apply_customer(Customer("c-1", "瑞金医院", "瑞金医院", "310100"),
                                     clock.now(), uow=uow)
    return uow, deps


def _recompute(uow) -> dict[tuple[str, str], int]:
    """What each dealer holds of each batch, from scratch: shipped lines, returns and
    every active accepted row."""
    held: dict[tuple[str, str], int] = defaultdict(int)
    for line in uow.projections.lines.values():
        held[(line.dealer_id, line.batch)] += line.quantity
    for (dealer, _, batch), quantity in list(uow.projections.returns.items()):
        held[(dealer, batch)] -= quantity
    for accepted in uow.flow_rows.active():
        held[(accepted.dealer_id, accepted.batch)] -= accepted.quantity
        if accepted.transfer_to_dealer_id:
            held[(accepted.transfer_to_dealer_id, accepted.batch)] += accepted.quantity
    return held


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
async def test_accepted_flow_never_exceeds_what_reached_the_dealer(actions):
    uow, deps = await _world()
    shipments = 0
    day = 1
    last_upload: dict[str, str] = {}
    for action in actions:
        day += 1
        sold_on = date(2026, 3, day).isoformat()
        kind = action[0]
        if kind == "ship":
            shipments += 1
            await projections.apply_shipment([ShipmentLine(
                f"S{shipments}", 1, P, "A-001", G, action[1], None, action[2],
                date(2026, 3, 1))], uow=uow)
        elif kind == "return":
            await projections.apply_return(P, [projections.ReturnedLine(
                G, action[1], action[2], ())], uow=uow)
        elif kind == "sell":
            _, dealer, batch, quantity = action
            upload = await run(deps, dealer, csv_file([row(day=sold_on, hospital="瑞金医院",
                                                           batch=batch, quantity=str(quantity))]))
            if upload.status == UploadStatus.ACCEPTED:
                last_upload[dealer] = upload.id
                assert _recompute(uow)[(dealer, batch)] >= 0
        elif kind == "transfer":
            _, batch, quantity = action
            upload = await run(deps, P, csv_file([row(day=sold_on, hospital=SUB_NAME,
                                                      batch=batch, quantity=str(quantity))]))
            if upload.status == UploadStatus.ACCEPTED:
                last_upload[P] = upload.id
                assert _recompute(uow)[(P, batch)] >= 0
        elif kind == "replace" and P in last_upload:
            _, batch, quantity = action
            rows = [row(day=sold_on, batch=batch, quantity=str(quantity))] if quantity else [
                row(day=sold_on, batch=batch, quantity="1", hospital="不存在的医院")]
            upload = await run(deps, P, csv_file(rows), replaces_upload_id=last_upload[P])
            if upload.status == UploadStatus.ACCEPTED:
                last_upload[P] = upload.id
                assert all(v >= 0 for (d, _), v in _recompute(uow).items() if d == P) or any(
                    a[0] == "return" for a in actions)
        held = _recompute(uow)
        # What the validator would compute equals the recomputation, and never < 0.
        for dealer in (P, S):
            stock = await uow.projections.stock(dealer)
            moves = await uow.flow_rows.movements(dealer, "")
            for batch in BATCHES:
                key = (G, batch)
                assert available(stock.get(key), moves.get(key)) == held[(dealer, batch)]
    for accepted in uow.flow_rows.active():
        assert accepted.quantity > 0
