"""Isolation specs for the engagement service's gateway routes: SOP tasks and the
execution view (a dealer sees its own dealer's tasks), dealer health (lists and one
dealer's), the inbox (everyone reads and marks only their own items), and HQ's rules and
policy, refused to every other role. See spec.py for the format."""

from __future__ import annotations

from tests.harness import eventually
from tests.isolation.spec import Call, Endpoint, only
from tests.isolation.specs_registration import new_registration, registration_of
from tests.isolation.world import HQ, IsolationWorld

ADMIN = only("admin")
STAFF = only(*HQ)
# Who the tenant's own inbox items belong to (world.staff_of).
OWNER = {"east": "east_admin", "south": "south_sales", "platform": "platform_sales",
         "sub": "sub_sales"}
VISIT_RULE = {"name": "新报备7天内首次拜访", "trigger": "registration.approved",
              "closing": "registration.note_added", "deadline_minutes": 7 * 24 * 60,
              "assignee_role": "dealer"}


async def _get(world: IsolationWorld, principal: str, path: str, **params) -> dict:
    async with world.client(principal) as client:
        response = await client.get(path, params=params or None)
        assert response.status_code == 200, response.text
        return response.json()


async def _approved_with_task(world: IsolationWorld, tenant: str) -> dict:
    """The tenant's approved registration, once the visit task it opened and the dealer's
    notice of it have landed (the visit rule is created first)."""
    if "engagement:rule" not in world.cache:
        async with world.client("admin") as admin:
            response = await admin.post("/api/v1/sop-rules", json=VISIT_RULE)
            assert response.status_code == 201, response.text
        world.cache["engagement:rule"] = response.json()
    key = f"engagement:task:{tenant}"
    if key not in world.cache:
        registration = await registration_of(world, tenant)

        async def landed():
            tasks = (await _get(world, "admin", "/api/v1/tasks", page_size=500))["tasks"]
            items = (await _get(world, OWNER[tenant], "/api/v1/inbox"))["items"]
            task = next((t for t in tasks if t["subject_id"] == registration["id"]), None)
            item = next((i for i in items if i["ref_id"] == registration["id"]), None)
            return (task, item) if task and item else None

        world.cache[key] = await eventually(landed, timeout=20)
    return world.cache[key]


async def _tasks(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await _approved_with_task(world, tenant)
        return None
    return Call(params={"page_size": 500})


async def _execution(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await _approved_with_task(world, tenant)
        return None
    return Call(params={"group_by": "dealer"})


async def _known_dealer(world: IsolationWorld, tenant: str) -> Call:
    """The tenant's dealer, once engagement has it from identity's events."""
    dealer_id = world.dealer_ids[tenant]

    async def known():
        async with world.client("admin") as admin:
            response = await admin.get(f"/api/v1/dealers/{dealer_id}/health")
        return response.status_code == 200

    await eventually(known, timeout=20)
    return Call(path_params={"dealer_id": dealer_id})


async def _health_list(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await _known_dealer(world, tenant)
        return None
    return Call(params={"page_size": 500})


async def _inbox(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await _approved_with_task(world, tenant)
        return None
    return Call(params={"page_size": 500})


async def _unread(world: IsolationWorld, tenant: str, call: Call) -> bool:
    """A refused attempt left the owner's item as it was (unread)."""
    items = (await _get(world, OWNER[tenant], "/api/v1/inbox", unread_only="true"))["items"]
    return call.json["ids"][0] in {i["id"] for i in items}


async def _fresh_item(world: IsolationWorld, tenant: str) -> Call:
    """An unread item of the tenant's owner each time (a new approval's notice)."""
    registration = await new_registration(world, tenant, approve=True)

    async def landed():
        items = (await _get(world, OWNER[tenant], "/api/v1/inbox"))["items"]
        return next((i for i in items if i["ref_id"] == registration["id"]), None)

    item = await eventually(landed, timeout=20)
    return Call(json={"ids": [item["id"]]})


async def _nothing(world: IsolationWorld, tenant: str) -> Call | None:
    return None


async def _new_rule(world: IsolationWorld, tenant: str) -> Call | None:
    return None if tenant else Call(json={**VISIT_RULE, "name": "隔离测试规则"})


async def _switch_rule(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        return None
    async with world.client("admin") as admin:
        response = await admin.post("/api/v1/sop-rules", json={**VISIT_RULE, "name": "停用测试"})
        assert response.status_code == 201, response.text
    return Call(path_params={"rule_id": response.json()["id"]}, json={"active": False})


async def _policy(world: IsolationWorld, tenant: str) -> Call | None:
    return None if tenant else Call(json={"max_days_without_order": 30})


def _no_items(body: dict) -> list[dict]:
    return []


def _none(world: IsolationWorld, item: dict) -> str:
    return ""


SPECS = [
    Endpoint("GET", "/api/v1/tasks", "list", _tasks, items=lambda body: body["tasks"],
             dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("GET", "/api/v1/sop-execution", "list", _execution, permitted=STAFF,
             items=lambda body: body["rows"], dealer_of=lambda w, item: item["key"]),
    Endpoint("GET", "/api/v1/dealer-health", "list", _health_list,
             items=lambda body: body["dealers"], dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("GET", "/api/v1/dealers/{dealer_id}/health", "object", _known_dealer),
    # Everyone's inbox holds only their own items: a dealer's staff the notices of their
    # dealer; staff of HQ may have none of a tenant's (complete=False).
    Endpoint("GET", "/api/v1/inbox", "list", _inbox, items=lambda body: body["items"],
             dealer_of=lambda w, item: item["dealer_id"], complete=False),
    # Marking an item read is its recipient's alone: anybody else, even one who sees the
    # dealer, is told it does not exist.
    Endpoint("POST", "/api/v1/inbox/read", "object", _fresh_item,
             permitted=lambda principal, tenant: principal == OWNER[tenant], denied=(404,),
             fresh=True, unchanged=_unread),
    # Rules and the policy name no dealer: staff read them, HQ admins write them.
    Endpoint("GET", "/api/v1/sop-rules", "list", _nothing, permitted=STAFF, items=_no_items,
             dealer_of=_none, complete=False),
    Endpoint("POST", "/api/v1/sop-rules", "list", _new_rule, permitted=ADMIN, ok=(201,),
             items=_no_items, dealer_of=_none, complete=False),
    Endpoint("PATCH", "/api/v1/sop-rules/{rule_id}", "list", _switch_rule, permitted=ADMIN,
             items=_no_items, dealer_of=_none, complete=False),
    Endpoint("GET", "/api/v1/health-policy", "list", _nothing, permitted=STAFF,
             items=_no_items, dealer_of=_none, complete=False),
    Endpoint("PUT", "/api/v1/health-policy", "list", _policy, permitted=ADMIN,
             items=_no_items, dealer_of=_none, complete=False),
]

EXEMPT: dict[tuple[str, str], str] = {}
