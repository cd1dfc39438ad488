"""Rules of uploads that are not row checks: which upload may replace which, closed
periods, and how much of a batch a dealer still holds. Pure Python, no I/O."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from services.flow.domain.model import Movement, Period, StockEntry, Upload, UploadStatus

# The latest day anywhere on Earth (UTC+14): a sale dated after it is in the future
# wherever the dealer is.
_EARTH_AHEAD = timedelta(hours=14)


def latest_sale_day(now: datetime) -> date:
    return (now + _EARTH_AHEAD).date()


def replacement_problem(previous: Upload | None, dealer_id: str,
                        closed_through: date | None) -> str:
    """Why ``previous`` cannot be replaced by a new upload of ``dealer_id`` ("" if it
    can): it must be the dealer's accepted upload, of a period not yet closed."""
    if previous is None or previous.dealer_id != dealer_id:
        return "the upload to replace does not exist"
    if previous.status != UploadStatus.ACCEPTED:
        return f"only an accepted upload can be replaced (this one is {previous.status.name})"
    if period_closed(previous.period, previous.finished_at, closed_through):
        return "its period is closed"
    return ""


def period_closed(period: Period, accepted_at: datetime | None,
                  closed_through: date | None) -> bool:
    if closed_through is None:
        return False
    start = period.start or (accepted_at.date() if accepted_at else None)
    return start is not None and start <= closed_through


def available(stock: StockEntry | None, movement: Movement | None) -> int:
    """What the dealer still holds of a batch: received − returned + transferred in −
    sold and transferred out (never negative in accepted flow)."""
    received = (stock.received - stock.returned) if stock else 0
    if movement is None:
        return received
    return received + movement.transferred_in - movement.out


def first_reached(stock: StockEntry | None, movement: Movement | None) -> date | None:
    days = [d for d in ((stock.first_reached_on if stock else None),
                        (movement.first_transfer_on if movement else None)) if d]
    return min(days) if days else None
