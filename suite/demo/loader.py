"""Plays a planned demo world into a running suite through its public doors only: the
gateway's REST API (as HQ's admin, its channel managers and the dealers' staff) and the
order service's gRPC ingest as the ERP. Never a database write.

Each step first reads what exists (by natural key: credit code, username, product code,
client reference) and sends only what is missing, so a re-run after an interruption or
on a filled suite duplicates nothing."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta

import grpc
import httpx
from qudao.order.v1 import order_pb2, order_pb2_grpc
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from suite.demo.world import (
    MATERIALS,
    NOTICES,
    PASSWORD,
    REGIONS,
    SOP_RULES,
    DemoWorld,
    OrderPlan,
    Product,
    notice_reading,
    reader_numbers,
)

PAGE = 500
SHIPMENT_BATCH = 200
CREDIT_LIMIT = 5_000_000_00  # minor units: enough that only the planned orders are held


class DemoError(RuntimeError):
    """The suite refused something the demo sent: names the request and the answer."""


class StoredMeanwhile(DemoError):
    """An import was refused only because what it brings was stored meanwhile (by an
    interrupted run's import job, which the gateway finishes on its own)."""


@dataclass
class Loaded:
    """Ids the suite gave the world's things, and what was sent on this run."""

    hq_id: str = ""
    regions: dict[str, str] = field(default_factory=dict)      # region code → id
    dealers: dict[str, str] = field(default_factory=dict)      # credit code → id
    users: dict[str, str] = field(default_factory=dict)        # username → id
    customers: dict[str, str] = field(default_factory=dict)    # credit code → id
    orders: dict[str, dict] = field(default_factory=dict)      # client ref → order
    sent: Counter = field(default_factory=Counter)
    seconds: dict[str, float] = field(default_factory=dict)


class Gateway:
    def __init__(self, base_url: str, concurrency: int) -> None:
        # Idle connections are let go well before the gateway drops them (after 5 s), so
        # none is reused just as the gateway closes it.
        self.client = httpx.AsyncClient(base_url=base_url, timeout=120, limits=httpx.Limits(
            max_connections=concurrency, max_keepalive_connections=concurrency,
            keepalive_expiry=2))
        self.tokens: dict[str, str] = {}
        self.passwords: dict[str, str] = {}
        self._renewing: dict[str, asyncio.Lock] = {}

    async def close(self) -> None:
        await self.client.aclose()

    async def login(self, username: str, password: str) -> str:
        self.passwords[username] = password
        if username not in self.tokens:
            self.tokens[username] = await self._sign_in(username, password)
        return self.tokens[username]

    async def _sign_in(self, username: str, password: str) -> str:
        answer = await self.client.post("/api/v1/auth/login", json={
            "username": username, "password": password})
        if answer.status_code != 200:
            raise DemoError(f"login as {username}: {answer.status_code} {answer.text}")
        return answer.json()["access_token"]

    async def _renewed(self, username: str, expired: str) -> str:
        """A fresh token for ``username`` after ``expired`` was refused: the many
        workers that find it expired at once sign in once, and none meanwhile finds no
        token at all."""
        async with self._renewing.setdefault(username, asyncio.Lock()):
            if self.tokens[username] == expired:
                self.tokens[username] = await self._sign_in(username,
                                                            self.passwords[username])
            return self.tokens[username]

    async def call(self, as_user: str, method: str, path: str, ok=(200, 201), headers=None,
                   **kwargs):
        headers = {**(headers or {}), "Authorization": f"Bearer {self.tokens[as_user]}"}
        for attempt in range(5):
            try:
                answer = await self.client.request(method, path, headers=headers, **kwargs)
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.ConnectError):
                # A dropped connection (a loaded machine's gateway closes one whose request
                # it could not read in time): sent again. What the demo posts carries its
                # natural key (orders and registrations answer the one stored), or is
                # refused as a conflict when the first attempt went through, which then
                # counts as done (a user by name, a decision already made).
                if attempt == 4:
                    raise
                if method not in ("GET", "PUT"):
                    ok = (*ok, 409)
                await asyncio.sleep(1 + attempt)
                continue
            if answer.status_code == 401 and attempt < 4:
                # The access token outlived its 15 minutes in a long run: sign in again.
                expired = headers["Authorization"].removeprefix("Bearer ")
                headers["Authorization"] = f"Bearer {await self._renewed(as_user, expired)}"
                continue
            if answer.status_code not in (429, 503):
                break
            await asyncio.sleep(float(answer.headers.get("Retry-After", 1 + attempt)))
        if answer.status_code not in ok:
            raise DemoError(f"{method} {path}: {answer.status_code} {answer.text[:500]}")
        return answer.json() if answer.content else {}

    async def import_csv(self, path: str, content: bytes, filename: str) -> dict:
        """An import's answer. Always as a job (202, waited for here): a request's own
        deadline is shorter than a big world's import takes on a loaded machine."""
        answer = await self.call("admin", "POST", path, ok=(200, 202), content=content,
                                 params={"filename": filename},
                                 headers={"Content-Type": "text/csv",
                                          "Prefer": "respond-async"})
        while answer.get("state") in ("queued", "running"):
            await asyncio.sleep(0.5)
            answer = await self.call("admin", "GET", answer["location"])
        if "state" not in answer:
            return answer
        if (answer.get("problem") or {}).get("reason") == "CONCURRENT_CHANGE":
            raise StoredMeanwhile(f"{path}: {answer['problem'].get('detail')}")
        if answer["state"] != "succeeded":
            raise DemoError(f"{path}: the import job {answer['state']}: "
                            f"{answer.get('problem')}")
        return answer["result"]

    async def pages(self, as_user: str, path: str, key: str, **params) -> list[dict]:
        items, token = [], ""
        while True:
            answer = await self.call(as_user, "GET", path, params={
                **params, "page_size": PAGE, "page_token": token})
            items += answer.get(key, [])
            token = (answer.get("page") or {}).get("next_page_token", "")
            if not token:
                return items


async def _each(items: Iterable, work: Callable[..., Awaitable], concurrency: int,
                progress: Progress, label: str) -> None:
    items = list(items)
    task = progress.add_task(label, total=len(items))
    queue = iter(items)

    async def worker() -> None:
        for item in queue:
            await work(item)
            progress.advance(task)

    await asyncio.gather(*(worker() for _ in range(concurrency)))


async def _together(*steps: Awaitable[None]) -> None:
    """Run the steps at once; the first failure cancels the others and is raised as
    itself (not wrapped in a group), so it reads like a step's own error."""
    try:
        async with asyncio.TaskGroup() as group:
            for step in steps:
                group.create_task(step)
    except BaseExceptionGroup as failed:
        first = failed.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


def _sale_amount(product, count: int) -> str:
    """What the hospital paid, in yuan: the list price and the dealer's margin (15%);
    sell-through commission and amount-based rebates are computed from it."""
    return f"{count * product.list_price_minor * 115 // 100 / 100:.2f}"


def _csv(header: list[str], rows: Iterable[list]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


class DemoLoader:
    def __init__(self, world: DemoWorld, gateway: Gateway, order_addr: str,
                 progress: Progress, concurrency: int = 8) -> None:
        self.world = world
        self.gateway = gateway
        self.order_addr = order_addr
        self.progress = progress
        self.concurrency = concurrency
        self.loaded = Loaded()
        self.rng = random.Random(7)

    async def run(self, admin_password: str) -> Loaded:
        """The steps, at once where they wait on different services and need nothing of
        each other: the dealers' staff (thousands of argon2 hashes: identity's work)
        while the others take the trade; the catalog, credit and orders (the order
        service) while the hospitals are imported and registered (registration). The
        notices and materials, read by dealers' staff, come last."""
        await self.gateway.login("admin", admin_password)
        await self._timed("org", self.org)
        await self._timed("people", self.people)
        await self._timed("sop_rules", self.sop_rules)
        await _together(self._timed("dealer_staff", self.dealer_staff), self._trade())
        await self._timed("notices", self.notices)
        await self._timed("materials", self.materials)
        return self.loaded

    async def _trade(self) -> None:
        await _together(
            self._in_turn(("catalog", self.catalog), ("orders", self.orders),
                          ("shipments", self.shipments), ("receipts", self.receipts)),
            self._in_turn(("customers", self.customers), ("registrations", self.registrations)),
            self._timed("incentives", self.incentives))
        # Sell-through names the hospitals and the goods received, under the programs.
        await self._timed("flow", self.flow)

    async def _in_turn(self, *steps: tuple[str, Callable[[], Awaitable[None]]]) -> None:
        for name, step in steps:
            await self._timed(name, step)

    async def _timed(self, name: str, step: Callable[[], Awaitable[None]]) -> None:
        started = time.perf_counter()
        await step()
        self.loaded.seconds[name] = round(time.perf_counter() - started, 1)

    # ------------------------------------------------------------------ org and people
    async def org(self) -> None:
        g, loaded = self.gateway, self.loaded
        units = await g.pages("admin", "/api/v1/org-units", "org_units")
        loaded.hq_id = next(u["id"] for u in units if u["kind"] == "hq")
        loaded.regions = {u["region_code"]: u["id"] for u in units if u["kind"] == "region"}
        for code, (name, _, _) in REGIONS.items():
            if code not in loaded.regions:
                created = await g.call("admin", "POST", "/api/v1/org-units", json={
                    "kind": "region", "name": name, "region_code": code})
                loaded.regions[code] = created["id"]
                loaded.sent["regions"] += 1
        known = {u.get("credit_code") for u in units if u["kind"] == "dealer"}
        missing = [d for d in self.world.dealers if d.credit_code not in known]
        if missing:
            # Platform dealers come first: a sub-dealer's row names its platform's code.
            missing.sort(key=lambda d: d.tier != "platform")
            task = self.progress.add_task("dealers (import)", total=len(missing))
            content = _csv(
                ["name", "credit_code", "tier", "region_code", "platform_credit_code",
                 "division_codes", "product_lines", "city_code", "shared_with_platform"],
                ([d.name, d.credit_code, d.tier, d.region_code, d.platform_credit_code,
                  ";".join(d.territory), ";".join(d.product_lines), d.city_code,
                  "true" if d.platform_credit_code else ""] for d in missing))
            answer = await g.import_csv("/api/v1/dealers/import", content, "demo-dealers.csv")
            if answer.get("accepted") is False:
                raise DemoError(f"dealer import refused: {answer.get('errors', [])[:5]}")
            self.progress.update(task, completed=len(missing))
            loaded.sent["dealers"] += len(missing)
        units = await g.pages("admin", "/api/v1/org-units", "org_units", kind="dealer")
        loaded.dealers = {u["credit_code"]: u["id"] for u in units}

    def _org_id(self, org: str) -> str:
        if org == "hq":
            return self.loaded.hq_id
        return self.loaded.regions.get(org) or self.loaded.dealers[org]

    async def people(self) -> None:
        """HQ's and the regions' staff and the ERP's account; each region's channel
        manager looks after the region's dealers."""
        g, loaded = self.gateway, self.loaded
        loaded.users = {u["username"]: u["id"]
                        for u in await g.pages("admin", "/api/v1/users", "users")}
        await self._create_users([p for p in self.world.people if not self._of_dealer(p)],
                                 "HQ and region staff")
        assigned = {(a["manager_user_id"], a["dealer_id"]) for a in await g.pages(
            "admin", "/api/v1/assignments", "assignments")}
        for code in REGIONS:
            manager = loaded.users[f"demo.{code}.cm"]
            dealer_ids = [loaded.dealers[d.credit_code] for d in self.world.dealers
                          if d.region_code == code
                          and (manager, loaded.dealers[d.credit_code]) not in assigned]
            for start in range(0, len(dealer_ids), 5000):
                await g.call("admin", "POST", "/api/v1/assignments", ok=(200, 201, 409), json={
                    "manager_user_id": manager, "dealer_ids": dealer_ids[start:start + 5000],
                    "reason": "演示数据"})
        for code in REGIONS:
            await g.login(f"demo.{code}.cm", PASSWORD)

    async def dealer_staff(self) -> None:
        await self._create_users([p for p in self.world.people if self._of_dealer(p)],
                                 "dealer staff")

    def _of_dealer(self, person) -> bool:
        return person.org != "hq" and person.org not in REGIONS

    async def _create_users(self, people: list, label: str) -> None:
        g, loaded = self.gateway, self.loaded

        async def create(person) -> None:
            created = await g.call("admin", "POST", "/api/v1/users", json={
                "username": person.username, "password": PASSWORD,
                "display_name": person.display_name, "roles": list(person.roles),
                "org_unit_id": self._org_id(person.org)})
            loaded.users[person.username] = created.get("id", "")  # "": made by a retry
            loaded.sent["users"] += 1

        # Identity hashes passwords on a handful of threads: more at once only queue.
        await _each([p for p in people if p.username not in loaded.users], create,
                    min(self.concurrency, 8), self.progress, label)

    # ------------------------------------------------------------------ catalog, credit
    async def catalog(self) -> None:
        g, world = self.gateway, self.world
        for start in range(0, len(world.products), 500):
            answer = await g.call("admin", "PUT", "/api/v1/products", json={"products": [
                {"code": p.code, "name": p.name, "spec": p.spec, "gtin": p.gtin,
                 "product_line": p.product_line, "unit": "盒",
                 "list_price": {"amount_minor": p.list_price_minor, "currency": "CNY"}}
                for p in world.products[start:start + 500]]})
            self.loaded.sent["products"] += answer.get("created", 0) + answer.get("updated", 0)
        for tier, share, label in (("platform", 80, "平台商"), ("one", 90, "一级经销商"),
                                   ("two", 95, "二级经销商")):
            await g.call("admin", "PUT", "/api/v1/price-lists", json={
                "name": f"演示 {label}价", "tier": tier, "valid_from": "2025-01-01",
                "items": [{"product_code": p.code,
                           "unit_price": {"amount_minor": p.list_price_minor * share // 100}}
                          for p in world.products]})

        # One dealer's account at a time: the order service computes every account's
        # balances for each page of its list (a page of 500 took over 30 s at 2,500
        # accounts, and the gateway gave up), while one account is cheap.
        async def credit(dealer) -> None:
            dealer_id = self.loaded.dealers[dealer.credit_code]
            account = await g.call("admin", "GET", f"/api/v1/dealer-accounts/{dealer_id}",
                                   ok=(200, 404))
            if int((account.get("credit_limit") or {}).get("amount_minor", 0)) == CREDIT_LIMIT:
                return
            await g.call("admin", "PUT", f"/api/v1/dealer-accounts/{dealer_id}/credit-limit",
                         json={"credit_limit": {"amount_minor": CREDIT_LIMIT, "currency": "CNY"},
                               "payment_terms_days": 60, "reason": "演示授信"})
            self.loaded.sent["credit_limits"] += 1

        await _each(world.dealers, credit, self.concurrency, self.progress, "credit limits")

    # ------------------------------------------------------------ customers, registrations
    async def customers(self) -> None:
        """The hospitals by import, 20,000 rows a file. An interrupted run's import job
        goes on in the gateway and may store some of them meanwhile: a file refused for
        that alone is sent again without what is there now."""
        g, loaded = self.gateway, self.loaded
        task, refused = None, None
        for _ in range(3):
            loaded.customers = {c.get("credit_code", ""): c["id"] for c in
                                await g.pages("admin", "/api/v1/customers", "customers")}
            missing = [h for h in self.world.hospitals
                       if h.credit_code not in loaded.customers]
            if refused is not None and len(missing) >= refused[0]:
                raise DemoError(f"hospital import refused: {refused[1]}")
            if task is None:
                task = self.progress.add_task("hospitals (import)", total=len(missing))
            try:
                await self._import_hospitals(missing, task)
            except StoredMeanwhile as exc:
                refused = (len(missing), exc)  # sent again only if some were stored
                continue
            if missing:
                loaded.customers = {c.get("credit_code", ""): c["id"] for c in
                                    await g.pages("admin", "/api/v1/customers", "customers")}
            return
        raise DemoError(f"hospital import refused: {refused[1]}")

    async def _import_hospitals(self, hospitals: list, task) -> None:
        for start in range(0, len(hospitals), 20_000):
            part = hospitals[start:start + 20_000]
            answer = await self.gateway.import_csv("/api/v1/customers/import", _csv(
                ["name", "credit_code", "address", "division_code", "grade", "aliases",
                 "departments"],
                ([h.name, h.credit_code, h.address, h.city_code, h.grade, ";".join(h.aliases),
                  ";".join(h.departments)] for h in part)), "demo-hospitals.csv")
            if answer.get("accepted") is False:
                errors = answer.get("errors", [])
                if errors and all(e.get("code") == "DUPLICATE" for e in errors):
                    raise StoredMeanwhile(f"{len(errors)} hospitals are there already, "
                                          f"e.g. {errors[:3]}")
                raise DemoError(f"hospital import refused: {errors[:5]}")
            self.progress.advance(task, len(part))
            self.loaded.sent["hospitals"] += len(part)

    async def registrations(self) -> None:
        """Each planned registration, then the manager's decision; a re-run after an
        interruption between the two makes the decision it missed."""
        g, world, loaded = self.gateway, self.world, self.loaded
        existing = {(r["dealer_id"], r["customer_id"], r["product_line"]): r for r in
                    await g.pages("admin", "/api/v1/registrations", "registrations")}

        def key(plan) -> tuple[str, str, str]:
            return (loaded.dealers[plan.dealer],
                    loaded.customers[world.hospitals[plan.hospital].credit_code],
                    plan.product_line)

        def undecided(registration: dict | None, plan) -> bool:
            return registration is None or (registration.get("status") == "submitted"
                                             and plan.outcome != "pending")

        async def register(plan) -> None:
            dealer = world.dealer(plan.dealer)
            registration = existing.get(key(plan))
            if registration is None:
                hospital = world.hospitals[plan.hospital]
                created = await g.call("admin", "POST", "/api/v1/registrations", json={
                    "dealer_id": loaded.dealers[plan.dealer],
                    "product_line": plan.product_line,
                    "customer_id": loaded.customers[hospital.credit_code],
                    "department": hospital.departments[0],
                    "client_request_id": plan.client_request_id})
                registration = created.get("registration", created)
                loaded.sent["registrations"] += 1
            if registration.get("status") != "submitted" or plan.outcome == "pending":
                return
            manager = f"demo.{dealer.region_code}.cm"
            verb = "approve" if plan.outcome == "approve" else "reject"
            await g.call(manager, "POST",
                         f"/api/v1/registrations/{registration['id']}/{verb}",
                         json={"comment": "演示审批"} if verb == "approve"
                         else {"reason": "信息不全"})
            loaded.sent["registration_decisions"] += 1
            if verb == "approve" and plan.visited:
                department = world.hospitals[plan.hospital].departments[0]
                await g.call("admin", "POST",
                             f"/api/v1/registrations/{registration['id']}/notes",
                             json={"text": f"首次拜访{department}主任，介绍产品"})
                loaded.sent["visit_notes"] += 1

        await _each([r for r in world.registrations if undecided(existing.get(key(r)), r)],
                    register, self.concurrency, self.progress, "registrations")

    # ------------------------------------------------------------------ orders and goods
    async def orders(self) -> None:
        g, loaded = self.gateway, self.loaded
        loaded.orders = {o["client_order_ref"]: o for o in
                         await g.pages("admin", "/api/v1/orders", "orders")
                         if o.get("client_order_ref", "").startswith("DEMO-")}

        async def submit(plan: OrderPlan) -> None:
            order = loaded.orders.get(plan.client_order_ref)
            if order is None:
                factor = 2000 if plan.fate == "hold" else 1  # over the credit line: held
                order = await g.call("admin", "POST", "/api/v1/orders", json={
                    "dealer_id": loaded.dealers[plan.dealer],
                    "client_order_ref": plan.client_order_ref,
                    "lines": [{"product_code": code, "quantity": quantity * factor}
                              for code, quantity in plan.lines]})
                loaded.sent["orders"] += 1
            if uncancelled(order, plan):
                order = await g.call("admin", "POST", f"/api/v1/orders/{order['id']}/cancel",
                                     json={"reason": "客户取消"})
                loaded.sent["order_cancellations"] += 1
            loaded.orders[plan.client_order_ref] = order

        def uncancelled(order: dict | None, plan: OrderPlan) -> bool:
            return (plan.fate == "cancel" and order is not None
                    and order["status"] in ("submitted", "approved"))

        # A re-run after an interruption between an order and its cancellation cancels it.
        await _each([p for p in self.world.orders if p.client_order_ref not in loaded.orders
                     or uncancelled(loaded.orders[p.client_order_ref], p)],
                    submit, self.concurrency, self.progress, "orders")

    def _serials(self, product: Product, plan: OrderPlan, line_no: int, quantity: int) -> list:
        if not product.serialised:
            return []
        return [f"{plan.client_order_ref[-6:]}{line_no:02d}{n:04d}" for n in range(quantity)]

    def _batch(self, plan: OrderPlan) -> str:
        return f"L{plan.ship_date:%y%m}"

    async def shipments(self) -> None:
        await self.gateway.login("demo.erp", PASSWORD)
        products = {p.code: p for p in self.world.products}
        known = {s.get("shipment_id") for s in
                 await self.gateway.pages("admin", "/api/v1/shipments", "shipments")}
        shipments = []
        for plan in self.world.orders:
            if f"DEMO-SHP-{plan.client_order_ref[-6:]}" in known:
                continue
            order = self.loaded.orders.get(plan.client_order_ref)
            if plan.fate not in ("ship", "receive") or not order or order["status"] not in (
                    "approved", "partially_shipped", "shipped", "completed"):
                continue
            shipments.append(order_pb2.Shipment(
                shipment_id=f"DEMO-SHP-{plan.client_order_ref[-6:]}",
                dealer_id=order["dealer_id"], ship_date=plan.ship_date.isoformat(),
                carrier="顺丰", waybill_no=f"SF{abs(hash(plan.client_order_ref)) % 10**10:010d}",
                lines=[order_pb2.ShipmentLine(
                    line_no=line["line_no"], order_id=order["id"],
                    order_line_no=line["line_no"], product_code=line["product_code"],
                    batch=self._batch(plan),
                    expiry_date=(plan.ship_date + timedelta(days=730)).isoformat(),
                    serials=self._serials(products[line["product_code"]], plan, line["line_no"],
                                          int(line["quantity_ordered"])),
                    quantity=int(line["quantity_ordered"]))
                    for line in order["lines"]]))
        task = self.progress.add_task("shipments (ERP gRPC)", total=len(shipments))
        async with grpc.aio.insecure_channel(self.order_addr, options=[
                ("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
            stub = order_pb2_grpc.OrderServiceStub(channel)

            # One call per batch rather than one stream for all: each batch is stored
            # when its call returns, so an interrupted run keeps what went through and
            # no single deadline has to cover the whole year of shipments.
            async def record(batch: list) -> None:
                request = order_pb2.RecordShipmentsRequest(
                    shipments=batch, mode=order_pb2.INGEST_MODE_KEEP_VALID)
                try:
                    reply = await stub.RecordShipments(request, metadata=self._erp(), timeout=600)
                except grpc.aio.AioRpcError as error:
                    if error.code() != grpc.StatusCode.UNAUTHENTICATED:
                        raise
                    # The ERP's token outlived its 15 minutes: sign in again, once.
                    self.gateway.tokens.pop("demo.erp", None)
                    await self.gateway.login("demo.erp", PASSWORD)
                    reply = await stub.RecordShipments(request, metadata=self._erp(), timeout=600)
                rejected = [r for r in reply.results
                            if r.outcome == order_pb2.INGEST_OUTCOME_REJECTED]
                if rejected:
                    raise DemoError(f"the ERP's shipments were refused: {rejected[:3]}")
                self.progress.advance(task, len(batch))

            await _each([shipments[start:start + SHIPMENT_BATCH]
                         for start in range(0, len(shipments), SHIPMENT_BATCH)],
                        record, 2, self.progress, "shipment batches")
        self.loaded.sent["shipments"] += len(shipments)

    def _erp(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.gateway.tokens['demo.erp']}"),)

    async def receipts(self) -> None:
        g = self.gateway
        receiving = {f"DEMO-SHP-{p.client_order_ref[-6:]}" for p in self.world.orders
                     if p.fate == "receive"}
        shipments = [s for s in await g.pages("admin", "/api/v1/shipments", "shipments")
                     if s.get("shipment_id", s.get("id")) in receiving
                     and not s.get("received")]

        async def receive(shipment: dict) -> None:
            shipment_id = shipment.get("shipment_id", shipment.get("id"))
            await g.call("admin", "POST", f"/api/v1/shipments/{shipment_id}/receipt",
                         ok=(200, 201, 409), json={"lines": []})
            self.loaded.sent["receipts"] += 1

        await _each(shipments, receive, self.concurrency, self.progress, "receipts")

    # ------------------------------------------------------------------ incentives
    async def sop_rules(self) -> None:
        """HQ's follow-up rules, before the trade whose events open their tasks."""
        g = self.gateway
        names = {r["name"] for r in await g.pages("admin", "/api/v1/sop-rules", "rules")}
        for rule in SOP_RULES:
            if rule["name"] not in names:
                await g.call("admin", "POST", "/api/v1/sop-rules", json=rule)
                self.loaded.sent["sop_rules"] += 1

    async def incentives(self) -> None:
        g = self.gateway
        rules = await g.call("admin", "GET", "/api/v1/commission-rules")
        if not any(r["name"] == "演示佣金" for r in rules.get("rules", [])):
            await g.call("admin", "POST", "/api/v1/commission-rules", json={"rule": {
                "name": "演示佣金", "base": "sell_through", "base_rate_bps": 200,
                "rates": [{"source": "dealer_sourced", "rate_bps": 300},
                          {"source": "hq_lead", "rate_bps": 150}],
                "valid_from": f"{date.today().year - 1}-01-01"}})
            self.loaded.sent["commission_rules"] += 1
        programs = await g.pages("admin", "/api/v1/rebate-programs", "programs")
        names = {p["name"] for p in programs}
        year = date.today().year
        wanted = [
            {"name": f"{year} 年度返利（全国）", "product_lines": ["A系列", "B系列", "C系列"],
             "period": "year", "period_start": f"{year}-01-01", "period_end": f"{year}-12-31",
             "mode": "tiered_retroactive", "basis": "quantity", "currency": "CNY",
             "audience": {"term": {"tier": "one"}},
             "tiers": [{"min_quantity": 0, "rate_bps": 100},
                       {"min_quantity": 500, "rate_bps": 200},
                       {"min_quantity": 2000, "rate_bps": 300}]},
            {"name": f"{year} 华东季度返利", "product_lines": ["A系列"], "period": "quarter",
             "period_start": f"{year}-01-01", "period_end": f"{year}-12-31",
             "mode": "marginal", "basis": "amount", "currency": "CNY",
             "audience": {"term": {"region_code": "east"}},
             "tiers": [{"min_amount": {"amount_minor": 0}, "rate_bps": 100},
                       {"min_amount": {"amount_minor": 1_000_000}, "rate_bps": 250}],
             "cap": {"amount_minor": 5_000_000}}]
        for program in wanted:
            if program["name"] not in names:
                await g.call("admin", "POST", "/api/v1/rebate-programs",
                             json={"program": program})
                self.loaded.sent["rebate_programs"] += 1

    # ------------------------------------------------------------------ sell-through
    async def flow(self) -> None:
        """Each chosen dealer reports last month's sales from the goods it received: a
        clean file, and for every third dealer first a file with mistakes real files
        have (an unknown hospital, a batch never shipped, more sold than received)."""
        world, loaded = self.world, self.loaded
        dealers = {credit: loaded.dealers[credit] for credit in world.flow_dealers}
        products = {p.code: p for p in world.products}
        by_city: dict[str, list] = {}
        for hospital in world.hospitals:
            by_city.setdefault(hospital.city_code, []).append(hospital)
        existing = await self.gateway.pages("admin", "/api/v1/flow/uploads", "uploads")
        done = {u.get("filename", "").removesuffix(".csv") for u in existing}

        async def report(credit: str) -> None:
            dealer = world.dealer(credit)
            received = [p for p in world.orders if p.dealer == credit and p.fate == "receive"
                        and loaded.orders.get(p.client_order_ref)]
            if not received:
                return
            hospitals = by_city.get(dealer.city_code) or world.hospitals
            rows = []
            for plan in received:
                for code, quantity in plan.lines:
                    product = products[code]
                    hospital = self.rng.choice(hospitals)
                    sold = max(1, quantity // 2)
                    serials = self._serials(product, plan, 1 + [c for c, _ in plan.lines].index(
                        code), quantity)[:sold]
                    for count, serial in ([(1, s) for s in serials] if serials
                                          else [(sold, "")]):
                        rows.append([(plan.ship_date + timedelta(days=3)).isoformat(),
                                     hospital.aliases[0] if hospital.aliases and count > 1
                                     else hospital.name, hospital.departments[0], code,
                                     product.gtin, self._batch(plan),
                                     (plan.ship_date + timedelta(days=730)).isoformat(),
                                     serial, str(count), _sale_amount(product, count)])
            header = ["销售日期", "医院名称", "科室", "产品编码", "产品标识", "批号", "有效期",
                      "序列号", "数量", "金额"]
            first = min(p.ship_date for p in received)
            last = max(p.ship_date for p in received) + timedelta(days=3)
            params = {"dealer_id": dealers[credit], "period_start": first.isoformat(),
                      "period_end": last.isoformat()}
            if world.flow_dealers.index(credit) % 3 == 0:
                broken = [list(r) for r in rows[:3]]
                broken[0][1] = "不存在的测试医院"
                if len(broken) > 1:
                    broken[1][5] = "NOPE01"
                if len(broken) > 2:
                    broken[2][8] = "99999"
                key = f"DEMO-FLOW-{credit}-draft"
                if key not in done:
                    await self._upload(header, broken + rows[3:], key, params)
            key = f"DEMO-FLOW-{credit}"
            if key not in done:
                await self._upload(header, rows, key, params)

        await _each(dealers, report, min(self.concurrency, 4), self.progress, "flow uploads")

    # ------------------------------------------------------------------ notices, materials
    async def notices(self) -> None:
        """HQ's notices to audiences by tag expression, then the sampled dealers' sales
        reps read a third of what reaches them and confirm another third."""
        g = self.gateway
        published = {n["title"] for n in await g.pages("admin", "/api/v1/notices", "notices")}
        for plan in NOTICES:
            if plan.title not in published:
                await g.call("admin", "POST", "/api/v1/notices", json={
                    "title": plan.title, "body": plan.body, "category": plan.category,
                    "must_confirm": plan.must_confirm, "audience": plan.audience})
                self.loaded.sent["notices"] += 1
        numbers = {plan.title: n for n, plan in enumerate(NOTICES)}

        async def read(username: str, dealer_number: int) -> None:
            for notice in await g.pages(username, "/api/v1/notices", "notices"):
                if notice["title"] not in numbers:
                    continue
                reading = notice_reading(dealer_number, numbers[notice["title"]])
                if reading != "unread" and not notice.get("read_at"):
                    await g.call(username, "GET", f"/api/v1/notices/{notice['id']}")
                    self.loaded.sent["notice_reads"] += 1
                if reading == "confirm" and notice["must_confirm"] \
                        and not notice.get("confirmed_at"):
                    await g.call(username, "POST", f"/api/v1/notices/{notice['id']}/confirm")
                    self.loaded.sent["notice_confirmations"] += 1

        await _Readers(self).each(read, "notice reads")

    async def materials(self) -> None:
        """The material library (one material in a second version), and the sampled
        dealers' sales reps download what reaches them once."""
        g = self.gateway
        existing = {m["title"]: m for m in await g.pages("admin", "/api/v1/materials",
                                                         "materials")}
        for plan in MATERIALS:
            material = existing.get(plan.title)
            if material is None:
                material = (await g.call("admin", "POST", "/api/v1/materials", json={
                    "title": plan.title, "kind": plan.kind, "description": plan.description,
                    "audience": plan.audience, "file": _pdf(plan.versions[0])}))["material"]
                self.loaded.sent["materials"] += 1
            for filename in plan.versions[len(material["versions"]):]:
                material = await g.call("admin", "POST",
                                        f"/api/v1/materials/{material['id']}/versions",
                                        json={**_pdf(filename), "note": "更新规格参数"})
                self.loaded.sent["material_versions"] += 1
        used = {u["dealer_id"] for u in await g.pages("admin", "/api/v1/material-usage",
                                                      "usage")}

        async def download(username: str, dealer_number: int) -> None:
            dealer = self.world.dealers[dealer_number - 1]
            if self.loaded.dealers[dealer.credit_code] in used or dealer_number % 2:
                return
            for material in await g.pages(username, "/api/v1/materials", "materials"):
                answer = await g.client.get(
                    f"/api/v1/materials/{material['id']}/download",
                    headers={"Authorization": f"Bearer {g.tokens[username]}"})
                if answer.status_code != 200:
                    raise DemoError(f"download {material['title']} as {username}: "
                                    f"{answer.status_code} {answer.text[:300]}")
                self.loaded.sent["material_downloads"] += 1

        await _Readers(self).each(download, "material downloads")

    async def _upload(self, header: list[str], rows: list[list[str]], key: str,
                      params: dict) -> None:
        answer = await self.gateway.call(
            "admin", "POST", "/api/v1/flow/uploads", content=_csv(header, rows),
            params={**params, "filename": f"{key}.csv", "client_request_id": key},
            headers={"Content-Type": "text/csv"})
        upload = answer.get("upload", answer)
        deadline = time.monotonic() + 300
        while upload.get("status") in ("queued", "validating") and time.monotonic() < deadline:
            await asyncio.sleep(0.5)
            upload = await self.gateway.call("admin", "GET", f"/api/v1/flow/uploads/{upload['id']}")
            upload = upload.get("upload", upload)
        self.loaded.sent[f"flow_uploads_{upload.get('status', 'unknown')}"] += 1


def _pdf(text: str) -> dict:
    """A small PDF attachment as the API takes files."""
    content = b"%PDF-1.4\n% " + text.encode("utf-8") + b"\n%%EOF\n"
    return {"filename": text, "content_type": "application/pdf",
            "content_base64": base64.b64encode(content).decode()}


class _Readers:
    """Signs in the sampled dealers' sales reps, once each."""

    def __init__(self, loader: DemoLoader) -> None:
        self.loader = loader

    async def each(self, work: Callable[[str, int], Awaitable], label: str) -> None:
        async def sign_in_and_work(number: int) -> None:
            username = f"demo.d{number:05d}.sales"
            await self.loader.gateway.login(username, PASSWORD)
            await work(username, number)

        await _each(reader_numbers(self.loader.world), sign_in_and_work,
                    self.loader.concurrency, self.loader.progress, label)


def progress_bar() -> Progress:
    return Progress(TextColumn("{task.description:<22}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn())
