"""Channel inventory follows accepted sell-through: sales come off the seller, transfers
move stock to the sub-dealer, a part counts once, a superseded upload gives back exactly
what it took, and the positions always equal a recomputation from the uploads still in
force."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.order.domain.inventory import (
    AcceptedFlowPart,
    FlowLine,
    Stock,
    StockKey,
    StockMove,
    apply_moves,
    moves_of,
)
from services.order.usecases.inventory import apply_accepted_flow, undo_superseded
from shared.testing import FakeClock
from tests.service.order.fakes import FakeOrderUnitOfWork

PLATFORM, SUB, OTHER = "platform", "sub", "other"


def line(dealer: str, product: str, batch: str, quantity: int, to: str = "") -> FlowLine:
    return FlowLine(dealer, product, f"0{product[-1]}" * 7, "A系列", batch, "2028-12-31",
                    quantity, to)


def part(upload: str, index: int, *lines: FlowLine, dealer: str = PLATFORM
         ) -> AcceptedFlowPart:
    return AcceptedFlowPart(upload, index, dealer, tuple(lines))


def on_hand(uow: FakeOrderUnitOfWork) -> dict[tuple[str, str, str], tuple[int, int]]:
    return {(k.dealer_id, k.product_code, k.batch): (s.received, s.sold)
            for k, s in uow.stock.positions.items()}


def shipped(uow: FakeOrderUnitOfWork, dealer: str, product: str, batch: str,
            quantity: int) -> None:
    key = StockKey(dealer, product, batch)
    uow.stock.positions[key] = Stock(key, "", "A系列", "2028-12-31", received=quantity)


async def test_a_sale_comes_off_the_seller_and_a_transfer_reaches_the_sub_dealer():
    uow, clock = FakeOrderUnitOfWork(), FakeClock()
    shipped(uow, PLATFORM, "A-001", "L1", 10)
    applied = await apply_accepted_flow(part("u1", 0, line(PLATFORM, "A-001", "L1", 3),
                                             line(PLATFORM, "A-001", "L1", 4, to=SUB)),
                                        uow=uow, clock=clock)
    assert applied
    assert on_hand(uow) == {(PLATFORM, "A-001", "L1"): (10, 7), (SUB, "A-001", "L1"): (4, 0)}
    assert uow.stock.positions[StockKey(PLATFORM, "A-001", "L1")].on_hand == 3


async def test_the_same_part_delivered_twice_counts_once():
    uow, clock = FakeOrderUnitOfWork(), FakeClock()
    shipped(uow, PLATFORM, "A-001", "L1", 10)
    first = part("u1", 0, line(PLATFORM, "A-001", "L1", 3))
    assert await apply_accepted_flow(first, uow=uow, clock=clock)
    assert not await apply_accepted_flow(first, uow=uow, clock=clock)
    assert on_hand(uow)[(PLATFORM, "A-001", "L1")] == (10, 3)


async def test_a_superseded_upload_gives_back_every_part_and_late_parts_are_ignored():
    uow, clock = FakeOrderUnitOfWork(), FakeClock()
    shipped(uow, PLATFORM, "A-001", "L1", 10)
    await apply_accepted_flow(part("u1", 0, line(PLATFORM, "A-001", "L1", 3)), uow=uow,
                              clock=clock)
    await apply_accepted_flow(part("u1", 1, line(PLATFORM, "A-001", "L1", 2, to=SUB)),
                              uow=uow, clock=clock)
    assert await undo_superseded("u1", "u2", uow=uow, clock=clock) == 2
    assert on_hand(uow) == {(PLATFORM, "A-001", "L1"): (10, 0), (SUB, "A-001", "L1"): (0, 0)}
    # Superseded twice, or a part of it arriving after: nothing moves.
    assert await undo_superseded("u1", "u2", uow=uow, clock=clock) == 0
    assert not await apply_accepted_flow(part("u1", 2, line(PLATFORM, "A-001", "L1", 5)),
                                         uow=uow, clock=clock)
    assert on_hand(uow)[(PLATFORM, "A-001", "L1")] == (10, 0)
    # The replacement counts.
    await apply_accepted_flow(part("u2", 0, line(PLATFORM, "A-001", "L1", 6)), uow=uow,
                              clock=clock)
    assert on_hand(uow)[(PLATFORM, "A-001", "L1")] == (10, 6)


async def test_a_failed_application_leaves_nothing_behind():
    uow, clock = FakeOrderUnitOfWork(), FakeClock()

    class Broken(Exception):
        pass

    async def broken_move(moves, moment):
        raise Broken

    uow.stock.move = broken_move
    try:
        await apply_accepted_flow(part("u1", 0, line(PLATFORM, "A-001", "L1", 3)), uow=uow,
                                  clock=clock)
    except Broken:
        pass
    # The part was not remembered, so a redelivery applies it.
    assert uow.accepted_flow.parts == {}


DEALERS = st.sampled_from([PLATFORM, SUB, OTHER])
LINES = st.builds(line, DEALERS, st.sampled_from(["A-001", "A-002"]),
                  st.sampled_from(["L1", "L2"]), st.integers(1, 50),
                  st.sampled_from(["", "", SUB]))
# An action: apply part k of upload u, or supersede upload u.
ACTIONS = st.lists(st.one_of(
    st.tuples(st.just("apply"), st.integers(0, 3), st.integers(0, 2),
              st.lists(LINES, min_size=1, max_size=4)),
    st.tuples(st.just("supersede"), st.integers(0, 3))), max_size=25)


@settings(max_examples=150, deadline=None)
@given(ACTIONS)
async def test_positions_equal_a_recomputation_from_the_parts_still_in_force(actions):
    uow, clock = FakeOrderUnitOfWork(), FakeClock()
    in_force: dict[tuple[str, int], tuple[FlowLine, ...]] = {}
    superseded: set[str] = set()
    for action in actions:
        if action[0] == "apply":
            _, upload, index, lines = action
            upload_id = f"u{upload}"
            await apply_accepted_flow(part(upload_id, index, *lines), uow=uow, clock=clock)
            if upload_id not in superseded:
                in_force.setdefault((upload_id, index), tuple(lines))
        else:
            upload_id = f"u{action[1]}"
            await undo_superseded(upload_id, "next", uow=uow, clock=clock)
            superseded.add(upload_id)
            in_force = {k: v for k, v in in_force.items() if k[0] != upload_id}
    expected: dict[StockKey, Stock] = {}
    apply_moves(expected, moves_of(x for lines in in_force.values() for x in lines))
    actual = {k: (s.received, s.sold) for k, s in uow.stock.positions.items()
              if s.received or s.sold}
    assert actual == {k: (s.received, s.sold) for k, s in expected.items()
                      if s.received or s.sold}


def test_moves_add_up_per_position():
    moves = moves_of([line(PLATFORM, "A-001", "L1", 2), line(PLATFORM, "A-001", "L1", 3),
                      line(PLATFORM, "A-001", "L1", 1, to=SUB)])
    assert [(m.key.dealer_id, m.received, m.sold) for m in moves] == [
        (PLATFORM, 0, 6), (SUB, 1, 0)]
    assert isinstance(moves[0], StockMove)
