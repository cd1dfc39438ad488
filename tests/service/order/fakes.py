"""In-memory order repositories and unit of work for the service-layer tests. The stores
refuse what the database refuses: a part of an accepted upload recorded twice, an upload
superseded twice."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from services.order.domain.inventory import Stock, StockKey, StockMove, apply_moves
from shared.testing import FakeUnitOfWork


@dataclass
class FakeStock:
    positions: dict[StockKey, Stock] = field(default_factory=dict)

    async def move(self, moves: Iterable[StockMove], moment: datetime) -> None:
        apply_moves(self.positions, moves)

    async def get_many(self, keys: Iterable[StockKey]) -> dict[StockKey, Stock]:
        return {k: self.positions[k] for k in keys if k in self.positions}


@dataclass
class FakeAcceptedFlow:
    # (upload id, part index) → (moves, undone)
    parts: dict[tuple[str, int], tuple[list[StockMove], bool]] = field(default_factory=dict)
    superseded: dict[str, str] = field(default_factory=dict)

    async def record_part(self, upload_id: str, part_index: int, dealer_id: str,
                          moves: list[StockMove], moment: datetime) -> bool:
        if (upload_id, part_index) in self.parts:
            return False
        self.parts[(upload_id, part_index)] = (list(moves), False)
        return True

    async def is_superseded(self, upload_id: str) -> bool:
        return upload_id in self.superseded

    async def supersede(self, upload_id: str, superseded_by: str,
                        moment: datetime) -> list[StockMove]:
        if upload_id in self.superseded:
            return []
        self.superseded[upload_id] = superseded_by
        given_back: list[StockMove] = []
        for (uid, index), (moves, undone) in list(self.parts.items()):
            if uid == upload_id and not undone:
                given_back.extend(moves)
                self.parts[(uid, index)] = (moves, True)
        return given_back


class FakeOrderUnitOfWork(FakeUnitOfWork):
    repositories = ("stock", "accepted_flow")

    def __init__(self) -> None:
        super().__init__()
        self.stock = FakeStock()
        self.accepted_flow = FakeAcceptedFlow()
