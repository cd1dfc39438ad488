"""Isolation specs for the registration service's gateway routes (registration engineer).
See spec.py for the format.

Tenants' objects are made in their territories: east and platform in Shanghai
(310000), sub in 黄浦区 (310101), south in Shenzhen (440300). Every name is unique per
tenant and attempt, so no two tenants ever claim the same customer."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from tests.isolation.spec import Call, Endpoint, only
from tests.isolation.world import DEALER_STAFF, IsolationWorld

_serial = itertools.count(1)
_ADDRESSES = {"east": "上海市徐汇区宜山路{n}号", "platform": "上海市长宁区仙霞路{n}号",
              "sub": "上海市黄浦区瑞金二路{n}号", "south": "深圳市福田区深南大道{n}号"}
_CORES = "瑞仁华康德安和平泰宁嘉祥福寿永昌盛兴隆辉"
APPROVERS = only("admin", "cm_east", "cm_south", "region_east")
GRANTERS = only("admin", "cm_east", "cm_south")
HQ_DECIDERS = only("admin", "region_east")
RECALLERS = only(*DEALER_STAFF, "admin")
PIPELINE = only(*DEALER_STAFF, "admin", "cm_east", "cm_south", "region_east")


def _name(tenant: str, kind: str = "医院", prefix: str = "隔离") -> tuple[str, str]:
    """A fresh customer name and address in the tenant's territory."""
    n = next(_serial)
    core = _CORES[n % len(_CORES)] + _CORES[(n // len(_CORES)) % len(_CORES)]
    return f"{prefix}{tenant}{core}{n}号{kind}", _ADDRESSES[tenant].format(n=n)


async def _admin_post(world: IsolationWorld, path: str, body: dict, ok=(200, 201)) -> dict:
    async with world.client("admin") as admin:
        response = await admin.post(path, json=body)
    assert response.status_code in ok, response.text
    return response.json()


async def new_registration(world: IsolationWorld, tenant: str, approve: bool = False,
                           prefix: str = "隔离") -> dict:
    """A pending (or approved) registration of a fresh customer by the tenant's staff."""
    name, address = _name(tenant, prefix=prefix)
    async with world.client(world.staff_of[tenant]) as staff:
        response = await staff.post("/api/v1/registrations", json={
            "dealer_id": world.dealer_ids[tenant], "product_line": "A系列",
            "customer": {"name": name, "address": address}})
    assert response.status_code == 201, response.text
    registration = response.json()
    if approve:
        registration = await _admin_post(
            world, f"/api/v1/registrations/{registration['id']}/approve", {})
    return registration


async def registration_of(world: IsolationWorld, tenant: str) -> dict:
    """One approved registration per tenant (cached)."""
    key = f"registration:{tenant}"
    if key not in world.cache:
        world.cache[key] = await new_registration(world, tenant, approve=True)
    return world.cache[key]


async def customer_of(world: IsolationWorld, tenant: str) -> dict:
    key = f"customer:{tenant}"
    if key not in world.cache:
        name, address = _name(tenant)
        world.cache[key] = (await _admin_post(world, "/api/v1/customers", {
            "name": name, "address": address, "departments": ["心内科"]}))["customer"]
    return world.cache[key]


async def registered_customer(world: IsolationWorld, tenant: str) -> str:
    """The id of a customer only the tenant registered (named 可见…, cached), and which
    tenant each such customer is tied to."""
    key = f"registered-customer:{tenant}"
    if key not in world.cache:
        registration = await new_registration(world, tenant, prefix="可见")
        world.cache[key] = registration["customer_id"]
        world.cache.setdefault("customer-tenants", {})[registration["customer_id"]] = tenant
    return world.cache[key]


def _customer_dealer(world: IsolationWorld, customer: dict) -> str:
    tenant = world.cache.get("customer-tenants", {}).get(customer["id"])
    return world.dealer_ids[tenant] if tenant else ""


async def _customer(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"customer_id": await registered_customer(world, tenant)})


async def _patch_customer(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"customer_id": await registered_customer(world, tenant)},
                json={"grade": "三级甲等"})


def _grant_body(world: IsolationWorld, tenant: str, customer: dict) -> dict:
    today = datetime.now(UTC).date()
    return {"dealer_id": world.dealer_ids[tenant], "product_line": "A系列",
            "customer_id": customer["id"], "department": "心内科",
            "valid_from": today.isoformat(), "valid_to": (today + timedelta(days=365)).isoformat()}


async def new_grant(world: IsolationWorld, tenant: str) -> dict:
    return await _admin_post(world, "/api/v1/authorizations",
                             _grant_body(world, tenant, await customer_of(world, tenant)))


async def grant_of(world: IsolationWorld, tenant: str) -> dict:
    key = f"grant:{tenant}"
    if key not in world.cache:
        world.cache[key] = await new_grant(world, tenant)
    return world.cache[key]


async def new_lead(world: IsolationWorld, tenant: str) -> dict:
    """A lead assigned to the tenant (auto-assigned, then handed to it by HQ)."""
    name, address = _name(tenant)
    lead = await _admin_post(world, "/api/v1/leads", {
        "customer_name": name, "address": address, "product_line": "A系列"})
    if lead["assigned_dealer_id"] != world.dealer_ids[tenant]:
        lead = await _admin_post(world, f"/api/v1/leads/{lead['id']}/assign",
                                 {"dealer_id": world.dealer_ids[tenant]})
    return lead


async def lead_of(world: IsolationWorld, tenant: str) -> dict:
    key = f"lead:{tenant}"
    if key not in world.cache:
        world.cache[key] = await new_lead(world, tenant)
    return world.cache[key]


async def new_conflict(world: IsolationWorld, tenant: str) -> dict:
    """An open HQ review: the tenant registers a hospital, then a look-alike (one
    character apart, at another address) as new."""
    n = next(_serial)
    core = _CORES[n % len(_CORES)] + _CORES[(n // 7) % len(_CORES)] + f"{n:03d}纪念"
    async with world.client(world.staff_of[tenant]) as staff:
        for first, number in (("安", n), ("宁", n + 5000)):
            response = await staff.post("/api/v1/registrations", json={
                "dealer_id": world.dealer_ids[tenant], "product_line": "A系列",
                "customer": {"name": f"{first}{core}医院",
                             "address": _ADDRESSES[tenant].format(n=number)}})
            assert response.status_code == 201, response.text
    review = response.json()
    assert review["status"] == "under_review", review
    return review


async def conflict_of(world: IsolationWorld, tenant: str) -> dict:
    key = f"conflict:{tenant}"
    if key not in world.cache:
        world.cache[key] = await new_conflict(world, tenant)
    return world.cache[key]


# ---- setups ---------------------------------------------------------------------------


async def _submit(world: IsolationWorld, tenant: str) -> Call:
    name, address = _name(tenant)
    return Call(json={"dealer_id": world.dealer_ids[tenant], "product_line": "A系列",
                      "customer": {"name": name, "address": address}})


def _list(maker, params: dict | None = None):
    async def setup(world: IsolationWorld, tenant: str) -> Call | None:
        if tenant:
            await maker(world, tenant)
            return None
        return Call(params={"page_size": 500, **(params or {})})
    return setup


async def _registration(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"registration_id": (await registration_of(world, tenant))["id"]})


async def _pending(world: IsolationWorld, tenant: str) -> Call:
    registration = await new_registration(world, tenant)
    return Call(path_params={"registration_id": registration["id"]},
                json={"reason": "隔离测试"})


async def _pending_approve(world: IsolationWorld, tenant: str) -> Call:
    registration = await new_registration(world, tenant)
    return Call(path_params={"registration_id": registration["id"]}, json={"comment": "ok"})


async def _renew(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"registration_id": (await registration_of(world, tenant))["id"]},
                json={"reason": "跟进中"})


async def _stage(world: IsolationWorld, tenant: str) -> Call:
    registration = await new_registration(world, tenant, approve=True)
    return Call(path_params={"registration_id": registration["id"]},
                json={"stage": "needs_confirmed", "note": "确认需求"})


async def _note(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"registration_id": (await registration_of(world, tenant))["id"]},
                json={"text": "拜访"})


async def _notes(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"registration_id": (await registration_of(world, tenant))["id"]})


async def _resolve(world: IsolationWorld, tenant: str) -> Call:
    review = await new_conflict(world, tenant)
    return Call(path_params={"conflict_id": review["conflict_id"]},
                json={"winning_registration_id": review["id"], "note": "不是同一家"})


async def _assign(world: IsolationWorld, tenant: str) -> Call:
    lead = await lead_of(world, tenant)
    return Call(path_params={"lead_id": lead["id"]},
                json={"dealer_id": world.dealer_ids[tenant]})


async def _claim(world: IsolationWorld, tenant: str) -> Call:
    lead = await new_lead(world, tenant)
    return Call(path_params={"lead_id": lead["id"]},
                json={"dealer_id": world.dealer_ids[tenant]})


async def _release(world: IsolationWorld, tenant: str) -> Call:
    lead = await new_lead(world, tenant)
    return Call(path_params={"lead_id": lead["id"]}, json={"reason": "没有资源"})


async def _grant(world: IsolationWorld, tenant: str) -> Call:
    return Call(json=_grant_body(world, tenant, await customer_of(world, tenant)))


async def _revoke(world: IsolationWorld, tenant: str) -> Call:
    grant = await new_grant(world, tenant)
    return Call(path_params={"authorization_id": grant["id"]}, json={"reason": "合同终止"})


async def _letter(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"authorization_id": (await grant_of(world, tenant))["id"]},
                params={"format": "xlsx"})


def _claims_dealer(world: IsolationWorld, conflict: dict) -> str:
    return conflict["claims"][0]["registration"]["dealer_id"]


SPECS = [
    # The customer master: a dealer sees the customers it registered, holds, was granted
    # or assigned (HQ all; those who edit the master also the customers no dealer is
    # tied to). Of the others the duplicate check tells only that they are held.
    Endpoint("GET", "/api/v1/customers", "list",
             _list(registered_customer, {"query": "可见"}),
             items=lambda body: body["customers"], dealer_of=_customer_dealer),
    Endpoint("GET", "/api/v1/customers/{customer_id}", "object", _customer),
    Endpoint("PATCH", "/api/v1/customers/{customer_id}", "object", _patch_customer,
             permitted=only("admin", "cm_east", "cm_south", "region_east")),
    # Registrations. 409 is the registration rules answering (e.g. the same dealer
    # already holds the customer), which reveals nothing of another tenant.
    Endpoint("POST", "/api/v1/registrations", "object", _submit, ok=(201, 409)),
    Endpoint("GET", "/api/v1/registrations", "list", _list(registration_of),
             items=lambda body: body["registrations"],
             dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("GET", "/api/v1/registrations/expiring", "list",
             _list(registration_of, {"within_days": 3650}),
             items=lambda body: body["registrations"],
             dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("GET", "/api/v1/registrations/{registration_id}", "object", _registration),
    Endpoint("POST", "/api/v1/registrations/{registration_id}/recall", "object", _pending,
             permitted=RECALLERS, fresh=True),
    Endpoint("POST", "/api/v1/registrations/{registration_id}/approve", "object",
             _pending_approve, permitted=APPROVERS, fresh=True),
    Endpoint("POST", "/api/v1/registrations/{registration_id}/reject", "object", _pending,
             permitted=APPROVERS, fresh=True),
    Endpoint("POST", "/api/v1/registrations/{registration_id}/renew", "object", _renew,
             permitted=APPROVERS),
    Endpoint("POST", "/api/v1/registrations/{registration_id}/stage", "object", _stage,
             permitted=PIPELINE, fresh=True),
    Endpoint("POST", "/api/v1/registrations/{registration_id}/notes", "object", _note,
             permitted=PIPELINE, ok=(201,)),
    Endpoint("GET", "/api/v1/registrations/{registration_id}/notes", "object", _notes),
    Endpoint("GET", "/api/v1/funnel", "list", _list(registration_of, {"group_by": "dealer"}),
             items=lambda body: body["groups"], dealer_of=lambda w, item: item["key"]),
    # The HQ conflict queue.
    Endpoint("GET", "/api/v1/conflicts", "list", _list(conflict_of, {"status": "open"}),
             permitted=HQ_DECIDERS, items=lambda body: body["conflicts"],
             dealer_of=_claims_dealer),
    Endpoint("POST", "/api/v1/conflicts/{conflict_id}/resolve", "object", _resolve,
             permitted=HQ_DECIDERS, fresh=True),
    # The lead pool: a lead belongs to the dealer it is assigned to.
    Endpoint("GET", "/api/v1/leads", "list", _list(lead_of), items=lambda body: body["leads"],
             dealer_of=lambda w, item: item["assigned_dealer_id"]),
    Endpoint("POST", "/api/v1/leads/{lead_id}/assign", "object", _assign,
             permitted=HQ_DECIDERS),
    Endpoint("POST", "/api/v1/leads/{lead_id}/claim", "object", _claim, permitted=PIPELINE,
             fresh=True),
    Endpoint("POST", "/api/v1/leads/{lead_id}/release", "object", _release,
             permitted=PIPELINE, fresh=True),
    # Authorizations: a dealer sees all its grants, a channel manager its dealers'.
    Endpoint("POST", "/api/v1/authorizations", "object", _grant, permitted=GRANTERS,
             ok=(201,)),
    Endpoint("GET", "/api/v1/authorizations", "list", _list(grant_of),
             items=lambda body: body["authorizations"],
             dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("POST", "/api/v1/authorizations/{authorization_id}/revoke", "object", _revoke,
             permitted=GRANTERS, fresh=True),
    Endpoint("GET", "/api/v1/authorizations/{authorization_id}/letter", "object", _letter),
]

_MASTER = ("writes to the customer master name no dealer (HQ and managers create and "
           "import customers; a dealer's new customers come with its registrations)")
EXEMPT = {
    ("POST", "/api/v1/customers"): _MASTER,
    ("POST", "/api/v1/customers/import"): _MASTER + " (HQ and managers import it)",
    ("POST", "/api/v1/customers/aliases/import"): _MASTER + " (HQ imports alias lists; "
                                                            "403 for others)",
    ("POST", "/api/v1/customers/{customer_id}/merge"): (
        "HQ only (hq_admin, region_manager; 403 for every other role, "
        "tests/registration/test_matching.py): folds one customer of the master into another"),
    ("POST", "/api/v1/customers/check-duplicates"): (
        "answers any signed-in caller about a name it types; the candidates' claims and "
        "creators are blanked outside the caller's scope (that a customer is held and "
        "until when, never by whom: tests/registration/test_matching.py)"),
    ("POST", "/api/v1/leads"): "HQ enters a lead into the pool; it names no dealer (assignment "
                               "is by territory) and only HQ lead staff may (403 otherwise, "
                               "tests/registration/test_leads.py)",
    ("POST", "/api/v1/leads/import"): "HQ imports leads into the pool; names no dealer",
}
