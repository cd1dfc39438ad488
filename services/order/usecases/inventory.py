"""Channel inventory follows accepted sell-through (flow's upload.accepted and
upload.superseded): each part of an accepted upload moves stock once; a superseded
upload gives back exactly what its parts took, and a part of it arriving late is
ignored (flow sends the superseded event before the replacement's parts, and after the
superseded upload's own)."""

from __future__ import annotations

from services.order.domain.inventory import AcceptedFlowPart, combined, moves_of
from services.order.usecases.ports import OrderUnitOfWork
from shared.clock import Clock


async def apply_accepted_flow(part: AcceptedFlowPart, *, uow: OrderUnitOfWork,
                              clock: Clock) -> bool:
    """Move stock by one part of an accepted upload; False when nothing was moved (the
    part was applied before, or its upload is superseded already)."""
    moves = moves_of(part.lines)
    moment = clock.now()
    async with uow:
        if await uow.accepted_flow.is_superseded(part.upload_id):
            return False
        if not await uow.accepted_flow.record_part(part.upload_id, part.part_index,
                                                   part.dealer_id, moves, moment):
            return False
        await uow.stock.move(moves, moment)
        await uow.commit()
    return True


async def undo_superseded(upload_id: str, superseded_by: str, *, uow: OrderUnitOfWork,
                          clock: Clock) -> int:
    """Give back what a superseded upload's parts moved; how many positions changed."""
    moment = clock.now()
    async with uow:
        taken = await uow.accepted_flow.supersede(upload_id, superseded_by, moment)
        given_back = combined(move.reversed() for move in taken)
        await uow.stock.move(given_back, moment)
        await uow.commit()
    return len(given_back)
