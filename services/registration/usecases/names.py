"""The duplicate check's name index, per replica: loaded from the customers at start,
told of this replica's own new customers after each commit (``customers.remember``), and
refreshed every few seconds (bootstrap runs ``refresh_names`` as a worker) so customers
another replica wrote are found too."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.registration.domain.customers import NameEntry
from services.registration.usecases.ports import Names, RegistrationUnitOfWork
from shared.clock import Clock

# Rows committed a little before a look may become visible only after it (a slow
# transaction); each look starts this far before the previous one.
OVERLAP = timedelta(seconds=5)


def _put(names: Names, entries: list[NameEntry]) -> None:
    for entry in entries:
        names.put(entry.customer_id, entry.city_code, entry.normalized_name, entry.alias_keys,
                  entry.address_key, entry.division_code)


async def load_names(*, uow: RegistrationUnitOfWork, names: Names, clock: Clock,
                     batch: int = 50_000) -> int:
    """Every customer into the index, streamed in batches; how many."""
    started = clock.now()
    count, last_id = 0, ""
    while True:
        async with uow.read():
            entries = await uow.customers.name_entries(last_id, batch)
        _put(names, entries)
        count += len(entries)
        if len(entries) < batch:
            break
        last_id = entries[-1].customer_id
    names.watermark = started - OVERLAP
    return count


async def refresh_names(*, uow: RegistrationUnitOfWork, names: Names, clock: Clock) -> int:
    """Customers changed since the last look (by any replica) into the index; how many."""
    since = names.watermark or datetime(2000, 1, 1, tzinfo=UTC)
    started = clock.now()
    async with uow.read():
        entries = await uow.customers.name_entries_since(since)
    _put(names, entries)
    names.watermark = started - OVERLAP
    return len(entries)
