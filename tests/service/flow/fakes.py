"""In-memory stand-ins for the flow use cases' collaborators: the unit of work and its
repositories, and ``make_deps`` wiring them with the real (pure) file reader, report
writer and customer directory, which need nothing but the unit of work."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime

from services.flow.adapters.files import SheetWriter, StoredFileReader
from services.flow.adapters.name_index import CustomerDirectory
from services.flow.domain.model import (
    Authorization,
    Customer,
    Dealer,
    Diversion,
    DiversionStatus,
    FlowRow,
    MonthlySales,
    Movement,
    Product,
    SerialMove,
    ShipmentLine,
    ShippedSerial,
    StockEntry,
    Upload,
    UploadStatus,
)
from services.flow.usecases.ports import Deps, FlowOptions
from shared.money import Money
from shared.pagination import Page, PageRequest, page_of
from shared.testing import FakeClock, FakeScopes, FakeUnitOfWork, SequentialIds


def _page(items: list, page: PageRequest) -> Page:
    return page_of(items[page.offset:page.offset + page.size + 1], page, len(items))


class FakeUploads:
    def __init__(self) -> None:
        self.items: dict[str, Upload] = {}

    async def add(self, upload: Upload) -> None:
        self.items[upload.id] = upload

    async def get(self, upload_id: str) -> Upload | None:
        return self.items.get(upload_id)

    async def by_client_request(self, dealer_id: str, key: str) -> Upload | None:
        return next((u for u in self.items.values()
                     if u.dealer_id == dealer_id and u.client_request_id == key), None)

    async def save(self, upload: Upload) -> None:
        self.items[upload.id] = upload

    async def claim(self, worker: str, now: datetime, stale_before: datetime) -> Upload | None:
        for upload in sorted(self.items.values(), key=lambda u: u.uploaded_at):
            stale = upload.status == UploadStatus.VALIDATING and (
                upload.heartbeat_at is None or upload.heartbeat_at < stale_before)
            if upload.status == UploadStatus.QUEUED or stale:
                claimed = upload.evolve(status=UploadStatus.VALIDATING, worker=worker,
                                        heartbeat_at=now, validation_started_at=now,
                                        processed_rows=0)
                self.items[upload.id] = claimed
                return claimed
        return None

    async def heartbeat(self, upload_id: str, worker: str, now: datetime,
                        processed_rows: int, total_rows: int) -> bool:
        upload = self.items[upload_id]
        if upload.worker != worker or upload.status != UploadStatus.VALIDATING:
            return False
        self.items[upload_id] = upload.evolve(heartbeat_at=now, processed_rows=processed_rows,
                                              total_rows=total_rows)
        return True

    async def page(self, which, page: PageRequest) -> Page[Upload]:
        items = sorted((u for u in self.items.values()
                        if which.dealer_ids is None or u.dealer_id in which.dealer_ids),
                       key=lambda u: u.uploaded_at, reverse=True)
        if which.statuses:
            items = [u for u in items if u.status in which.statuses]
        return _page(items, page)


class FakeBlobs:
    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[int, bytes]] = defaultdict(dict)

    async def put_chunk(self, upload_id: str, kind: str, seq: int, data: bytes) -> None:
        self.items[(upload_id, kind)][seq] = data

    async def chunks(self, upload_id: str, kind: str):
        stored = self.items.get((upload_id, kind), {})
        for seq in sorted(stored):
            yield stored[seq]

    async def delete(self, upload_id: str, kind: str) -> None:
        self.items.pop((upload_id, kind), None)


class FakeMappings:
    def __init__(self) -> None:
        self.items: dict[str, dict] = {}

    async def get(self, dealer_id: str) -> dict:
        return dict(self.items.get(dealer_id, {}))

    async def save(self, dealer_id: str, mapping: dict, now: datetime) -> None:
        self.items[dealer_id] = dict(mapping)


class FakeLedgers:
    def __init__(self) -> None:
        self.versions: dict[str, int] = defaultdict(int)

    async def version(self, dealer_id: str) -> int:
        return self.versions[dealer_id]

    async def bump(self, dealer_ids) -> None:
        for dealer_id in dealer_ids:
            if dealer_id:
                self.versions[dealer_id] += 1

    async def advance(self, dealer_id: str, expected: int) -> bool:
        if self.versions[dealer_id] != expected:
            return False
        self.versions[dealer_id] += 1
        return True


class FakePeriods:
    def __init__(self) -> None:
        self.closed: list[date] = []

    async def closed_through(self) -> date | None:
        return max(self.closed) if self.closed else None

    async def close(self, through: date, by: str, at: datetime) -> None:
        self.closed.append(through)


class FakeFlowRows:
    def __init__(self) -> None:
        self.rows: list[tuple[FlowRow, bool]] = []
        self.moves: list[SerialMove] = []

    async def add(self, rows: list[FlowRow], currency: str) -> None:
        self.rows += [(row, True) for row in rows]

    async def deactivate(self, upload_id: str) -> None:
        self.rows = [(row, active and row.upload_id != upload_id) for row, active in self.rows]

    def active(self) -> list[FlowRow]:
        return [row for row, active in self.rows if active]

    async def move_customer(self, from_id: str, to_id: str, to_name: str) -> int:
        moved = [(replace(row, customer_id=to_id, customer_name=to_name), active)
                 if row.customer_id == from_id else (row, active) for row, active in self.rows]
        count = sum(row.customer_id == from_id for row, _ in self.rows)
        self.rows = moved
        return count

    async def movements(self, dealer_id: str, exclude_upload: str) -> dict:
        out: dict = defaultdict(int)
        incoming: dict = {}
        for row in self.active():
            key = (row.gtin, row.batch)
            if row.dealer_id == dealer_id and row.upload_id != exclude_upload:
                out[key] += row.quantity
            if row.transfer_to_dealer_id == dealer_id:
                quantity, first, shipment = incoming.get(key, (0, row.sold_on, row.shipment_id))
                incoming[key] = (quantity + row.quantity, min(first, row.sold_on), shipment)
        result = {key: Movement(*key, out=quantity) for key, quantity in out.items()}
        for key, (quantity, first, shipment) in incoming.items():
            result[key] = Movement(*key, out=out.get(key, 0), transferred_in=quantity,
                                   first_transfer_on=first, transfer_shipment_id=shipment)
        return result

    async def accepted_keys(self, dealer_id: str, start: date, end: date,
                            exclude_upload: str) -> set:
        return {(r.sold_on, r.customer_id or r.transfer_to_dealer_id, r.department, r.gtin,
                 r.batch) for r in self.active()
                if r.dealer_id == dealer_id and r.upload_id != exclude_upload
                and start <= r.sold_on <= end and not r.serials}

    async def serial_moves(self, keys, exclude_upload: str) -> dict:
        wanted = set(keys)
        found: dict = defaultdict(list)
        for move in self.moves:
            if (move.gtin, move.serial) in wanted and move.upload_id != exclude_upload:
                found[(move.gtin, move.serial)].append(move)
        return found

    async def add_serial_moves(self, moves: list[SerialMove]) -> None:
        self.moves += moves

    async def delete_serial_moves(self, upload_id: str) -> None:
        self.moves = [m for m in self.moves if m.upload_id != upload_id]

    async def page(self, which, page: PageRequest) -> Page[FlowRow]:
        items = [r for r in self.active()
                 if which.dealer_ids is None or r.dealer_id in which.dealer_ids]
        return _page(items, page)

    async def stream(self, which, limit: int):
        yield (await self.page(which, PageRequest(size=limit))).items

    async def monthly_sales(self, which) -> list[MonthlySales]:
        totals: dict = defaultdict(lambda: (0, 0))
        for r in self.active():
            if r.transfer_to_dealer_id or (which.dealer_ids is not None
                                           and r.dealer_id not in which.dealer_ids):
                continue
            quantity, amount = totals[(r.sold_on.strftime("%Y-%m"), r.dealer_id)]
            totals[(r.sold_on.strftime("%Y-%m"), r.dealer_id)] = (
                quantity + r.quantity, amount + r.amount.amount_minor)
        return [MonthlySales(dealer, month, quantity, Money(amount))
                for (month, dealer), (quantity, amount) in sorted(totals.items())]

    async def of_upload(self, upload_id: str) -> list[FlowRow]:
        return [row for row, _ in self.rows if row.upload_id == upload_id]


class FakeDiversions:
    def __init__(self) -> None:
        self.items: dict[str, Diversion] = {}

    async def add(self, diversion: Diversion) -> None:
        self.items[diversion.id] = diversion

    async def move_customer(self, from_id: str, to_id: str, to_name: str) -> int:
        moving = [d for d in self.items.values() if d.customer_id == from_id]
        for diversion in moving:
            self.items[diversion.id] = replace(diversion, customer_id=to_id,
                                               customer_name=to_name)
        return len(moving)

    async def get(self, diversion_id: str) -> Diversion | None:
        return self.items.get(diversion_id)

    async def open_for(self, selling: str, gtin: str, batch: str, shipped: str):
        return next((d for d in self.items.values() if (d.selling_dealer_id, d.gtin, d.batch,
                                                        d.shipped_dealer_id, d.status)
                     == (selling, gtin, batch, shipped, DiversionStatus.OPEN)), None)

    async def save(self, diversion: Diversion) -> None:
        self.items[diversion.id] = diversion

    async def page(self, which, page: PageRequest) -> Page[Diversion]:
        items = [d for d in self.items.values() if which.shipped_dealer_ids is None
                 or d.shipped_dealer_id in which.shipped_dealer_ids]
        return _page(items, page)


class FakeProjections:
    def __init__(self) -> None:
        self.catalog: dict[str, Product] = {}
        self.customers: dict[str, tuple[Customer, datetime]] = {}
        self.dealers: dict[str, Dealer] = {}
        self.grants: dict[str, Authorization] = {}
        self.lines: dict[tuple[str, int], ShipmentLine] = {}
        self.received: dict[tuple[str, int], int] = {}
        self.returns: dict[tuple[str, str, str], int] = defaultdict(int)
        self.serials: dict[tuple[str, str], ShippedSerial] = {}

    async def upsert_product(self, product: Product) -> None:
        self.catalog[product.gtin] = product

    async def products(self) -> list[Product]:
        return list(self.catalog.values())

    async def upsert_customer(self, customer: Customer, at: datetime) -> None:
        self.customers[customer.id] = (customer, at)

    async def customers_changed_since(self, since):
        return [c for c, at in self.customers.values() if since is None or at >= since]

    async def upsert_dealer(self, dealer: Dealer) -> None:
        self.dealers[dealer.id] = dealer

    async def dealer(self, dealer_id: str) -> Dealer | None:
        return self.dealers.get(dealer_id)

    async def sub_dealers(self, platform_dealer_id: str) -> list[Dealer]:
        return [d for d in self.dealers.values() if d.platform_dealer_id == platform_dealer_id]

    async def upsert_authorization(self, authorization: Authorization) -> None:
        self.grants[authorization.id] = authorization

    async def authorizations(self, dealer_id: str) -> list[Authorization]:
        return [g for g in self.grants.values() if g.dealer_id == dealer_id and g.active]

    async def merge_customer(self, kept: Customer, merged_id: str, at: datetime) -> None:
        self.customers[kept.id] = (kept, at)
        if merged_id in self.customers:
            self.customers[merged_id] = (replace(self.customers[merged_id][0],
                                                 merged_into=kept.id), at)
        for grant in [g for g in self.grants.values() if g.customer_id == merged_id]:
            self.grants[grant.id] = replace(grant, customer_id=kept.id)

    async def add_shipment_lines(self, lines: list[ShipmentLine]) -> int:
        fresh = [x for x in lines if (x.shipment_id, x.line_no) not in self.lines]
        for line in fresh:
            self.lines[(line.shipment_id, line.line_no)] = line
            for serial in line.serials:
                self.serials[(line.gtin, serial)] = ShippedSerial(
                    line.gtin, serial, line.dealer_id, line.batch, line.shipment_id,
                    line.ship_date)
        return len(fresh)

    async def receive(self, shipment_id: str, received: dict[int, int], on: date) -> list[str]:
        dealers = []
        for (sid, line_no), line in self.lines.items():
            if sid == shipment_id and line_no in received:
                self.received[(sid, line_no)] = received[line_no]
                dealers.append(line.dealer_id)
        return dealers

    async def returned(self, dealer_id: str, gtin: str, batch: str, quantity: int,
                       serials: list[str]) -> None:
        if not any((x.dealer_id, x.gtin, x.batch) == (dealer_id, gtin, batch)
                   for x in self.lines.values()):
            return  # as in SQL: no stock row, nothing to update
        self.returns[(dealer_id, gtin, batch)] += quantity
        for serial in serials:
            self.serials.pop((gtin, serial), None)

    def _entries(self) -> dict[tuple[str, str, str], StockEntry]:
        entries: dict[tuple[str, str, str], StockEntry] = {}
        for key, line in sorted(self.lines.items(), key=lambda item: item[1].ship_date):
            quantity = self.received.get(key, line.quantity)
            stock_key = (line.dealer_id, line.gtin, line.batch)
            current = entries.get(stock_key)
            if current is None:
                entries[stock_key] = StockEntry(line.dealer_id, line.gtin, line.batch, quantity,
                                                self.returns[stock_key], line.ship_date,
                                                line.shipment_id, line.expiry)
            else:
                entries[stock_key] = replace(current, received=current.received + quantity)
        return entries

    async def stock(self, dealer_id: str) -> dict:
        return {(g, b): e for (d, g, b), e in self._entries().items() if d == dealer_id}

    async def stock_of_batches(self, keys) -> dict:
        wanted = set(keys)
        found: dict = defaultdict(list)
        for (_, g, b), entry in self._entries().items():
            if (g, b) in wanted:
                found[(g, b)].append(entry)
        return found

    async def shipped_serials(self, keys) -> dict:
        return {key: self.serials[key] for key in keys if key in self.serials}

    async def clear(self, projection: str) -> None:
        if projection == "shipments":
            self.lines.clear()
            self.received.clear()
            self.serials.clear()


class FakeFlowUnitOfWork(FakeUnitOfWork):
    repositories = ("uploads", "blobs", "mappings", "ledgers", "periods", "flow_rows",
                    "diversions", "projections")

    def __init__(self) -> None:
        super().__init__()
        self.uploads = FakeUploads()
        self.blobs = FakeBlobs()
        self.mappings = FakeMappings()
        self.ledgers = FakeLedgers()
        self.periods = FakePeriods()
        self.flow_rows = FakeFlowRows()
        self.diversions = FakeDiversions()
        self.projections = FakeProjections()


class FakeReplayer:
    def __init__(self) -> None:
        self.events: dict[str, list] = defaultdict(list)

    async def replay(self, projection: str, uow) -> tuple[int, int]:
        for apply in self.events[projection]:
            await apply(uow)
        return len(self.events[projection]), len(self.events[projection])


OPTIONS = FlowOptions(worker_id="test-worker", fuzzy_threshold_bps=8500,
                      authorization_lines=frozenset(), max_file_bytes=50 * 1024 * 1024,
                      max_rows=100_000, max_columns=64, chunk_rows=3, lease_seconds=60,
                      event_rows_per_part=2)


def make_deps(uow: FakeFlowUnitOfWork, clock: FakeClock, scopes: FakeScopes,
              **options) -> Deps:
    factory = lambda: uow  # noqa: E731 - one shared fake, as one database
    return Deps(uow=factory, uow_in=lambda _session: uow, clock=clock,
                ids=SequentialIds("f"), scopes=scopes,
                reader=StoredFileReader(factory, max_rows=OPTIONS.max_rows,
                                        max_columns=OPTIONS.max_columns),
                reports=SheetWriter(), directory=CustomerDirectory(factory),
                replayer=FakeReplayer(), options=replace(OPTIONS, **options),
                wake=lambda: None)
