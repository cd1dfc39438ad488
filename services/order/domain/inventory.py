"""Channel inventory (渠道库存) moved by accepted sell-through: what one accepted flow
upload does to the stock of its dealers, per dealer × product × batch. Pure Python.

A sale to a hospital counts as sold at the selling dealer. A transfer to one of a
platform dealer's sub-dealers leaves the platform dealer as sold (it reported it in
its sell-through) and reaches the sub-dealer as received, so on hand (received − sold
− returned) follows the goods. A superseded upload is undone by applying exactly the
moves it made, reversed."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True)
class FlowLine:
    """One accepted (aggregated) row of a sell-through upload."""

    dealer_id: str
    product_code: str
    gtin: str
    product_line: str
    batch: str
    expiry_date: str
    quantity: int
    # Set when the goods went to a sub-dealer instead of a hospital.
    transfer_to_dealer_id: str = ""


@dataclass(frozen=True)
class AcceptedFlowPart:
    """One part of an accepted upload (large uploads arrive in several)."""

    upload_id: str
    part_index: int
    dealer_id: str
    lines: tuple[FlowLine, ...]


@dataclass(frozen=True)
class StockKey:
    dealer_id: str
    product_code: str
    batch: str


@dataclass(frozen=True)
class StockMove:
    """Quantities to add at one stock position (negative to take off)."""

    key: StockKey
    gtin: str
    product_line: str
    expiry_date: str
    received: int = 0
    sold: int = 0

    def reversed(self) -> StockMove:
        return replace(self, received=-self.received, sold=-self.sold)


@dataclass(frozen=True)
class Stock:
    """One position of the channel inventory."""

    key: StockKey
    gtin: str
    product_line: str
    expiry_date: str
    received: int = 0
    sold: int = 0
    returned: int = 0
    updated_at: datetime | None = None

    @property
    def on_hand(self) -> int:
        return self.received - self.sold - self.returned

    def moved(self, move: StockMove) -> Stock:
        return replace(self, received=self.received + move.received,
                       sold=self.sold + move.sold)


def moves_of(lines: Iterable[FlowLine]) -> list[StockMove]:
    """The stock moves of accepted rows, one per position, in key order."""
    totals: dict[StockKey, StockMove] = {}

    def add(dealer_id: str, line: FlowLine, received: int, sold: int) -> None:
        key = StockKey(dealer_id, line.product_code, line.batch)
        move = totals.get(key) or StockMove(key, line.gtin, line.product_line,
                                            line.expiry_date)
        totals[key] = replace(move, received=move.received + received,
                              sold=move.sold + sold)

    for line in lines:
        add(line.dealer_id, line, 0, line.quantity)
        if line.transfer_to_dealer_id:
            add(line.transfer_to_dealer_id, line, line.quantity, 0)
    return [totals[key] for key in sorted(totals, key=lambda k: (k.dealer_id,
                                                                  k.product_code, k.batch))]


def combined(moves: Iterable[StockMove]) -> list[StockMove]:
    """Moves at the same position added up into one (one row per position per
    statement)."""
    totals: dict[StockKey, StockMove] = {}
    for move in moves:
        seen = totals.get(move.key)
        totals[move.key] = move if seen is None else replace(
            seen, received=seen.received + move.received, sold=seen.sold + move.sold)
    return list(totals.values())


def apply_moves(stock: dict[StockKey, Stock], moves: Iterable[StockMove]) -> None:
    """Apply moves to positions in memory (a position a move names first is created)."""
    for move in moves:
        position = stock.get(move.key) or Stock(move.key, move.gtin, move.product_line,
                                                 move.expiry_date)
        stock[move.key] = position.moved(move)


@dataclass(frozen=True)
class StockQuery:
    dealer_id: str = ""
    # None: every dealer.
    dealer_ids: frozenset[str] | None = None
    product_code: str = ""
    gtin: str = ""
    batch: str = ""
    product_line: str = ""
    include_empty: bool = False


@dataclass(frozen=True)
class ProductStock:
    """Channel inventory of a product summed over dealers (or per dealer)."""

    product_code: str
    product_name: str
    product_line: str
    dealer_id: str
    received: int
    sold: int
    returned: int
    dealers: int

    @property
    def on_hand(self) -> int:
        return self.received - self.sold - self.returned
