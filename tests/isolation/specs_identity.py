"""Isolation specs for identity's gateway routes (org units, users, tags, audiences,
assignments, scope, audit). See spec.py for the format."""

from __future__ import annotations

import base64
import itertools

from tests.isolation.spec import Call, Endpoint, only
from tests.isolation.world import IsolationWorld
from tests.world import STAFF_PASSWORD

_serial = itertools.count(1)


def _admin_or_own_dealer_admin(principal: str, tenant: str) -> bool:
    return principal == "admin" or (principal == "east_admin" and tenant == "east")


def _admin_or_region_manager(principal: str, tenant: str) -> bool:
    return principal in ("admin", "region_east")


async def _admin_post(world: IsolationWorld, path: str, body: dict) -> dict:
    async with world.client("admin") as admin:
        response = await admin.post(path, json=body)
        assert response.status_code in (200, 201), response.text
        return response.json()


async def _target_user(world: IsolationWorld, tenant: str, fresh: bool = False) -> str:
    """A dealer_sales user of the tenant that no principal is (safe to change)."""
    key = f"identity:target:{tenant}"
    if fresh or key not in world.cache:
        user = await _admin_post(world, "/api/v1/users", {
            "username": f"iso.target.{tenant}.{next(_serial)}", "password": STAFF_PASSWORD,
            "roles": ["dealer_sales"], "org_unit_id": world.dealer_ids[tenant]})
        if fresh:
            return user["id"]
        world.cache[key] = user["id"]
    return world.cache[key]


async def _spare_manager(world: IsolationWorld, name: str = "spare") -> str:
    """A channel manager that is no principal, so assigning it changes no one's scope."""
    key = f"identity:cm:{name}"
    if key not in world.cache:
        async with world.client("admin") as admin:
            hq = (await admin.get("/api/v1/org-units", params={"kind": "hq"})).json()[
                "org_units"][0]["id"]
        world.cache[key] = (await _admin_post(world, "/api/v1/users", {
            "username": f"iso.cm.{name}", "password": STAFF_PASSWORD,
            "roles": ["channel_manager"], "org_unit_id": hq}))["id"]
    return world.cache[key]


async def _dealer(world: IsolationWorld, tenant: str) -> Call | None:
    if not tenant:
        return None
    return Call(path_params={"org_unit_id": world.dealer_ids[tenant]})


async def _same_name(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"org_unit_id": world.dealer_ids[tenant]},
                json={"name": f"隔离测试经销商-{tenant}", "reason": "isolation check"})


async def _tags(world: IsolationWorld, tenant: str) -> Call:
    return Call(json={"dealer_ids": [world.dealer_ids[tenant]], "tags": ["隔离标签"]})


async def _new_user(world: IsolationWorld, tenant: str) -> Call:
    return Call(json={"username": f"iso.new.{tenant}.{next(_serial)}",
                      "password": STAFF_PASSWORD, "roles": ["dealer_sales"],
                      "org_unit_id": world.dealer_ids[tenant]})


async def _user(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"user_id": await _target_user(world, tenant)})


async def _roles(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"user_id": await _target_user(world, tenant)},
                json={"roles": ["dealer_sales"]})


async def _password(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"user_id": await _target_user(world, tenant)},
                json={"new_password": STAFF_PASSWORD})


async def _deactivate(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"user_id": await _target_user(world, tenant, fresh=True)},
                json={"reason": "isolation check"})


async def _still_active(world: IsolationWorld, tenant: str, call: Call) -> bool:
    async with world.client("admin") as admin:
        user = (await admin.get(f"/api/v1/users/{call.path_params['user_id']}")).json()
    return user["active"] is True


async def _assign(world: IsolationWorld, tenant: str) -> Call:
    return Call(json={"manager_user_id": await _spare_manager(world),
                      "dealer_ids": [world.dealer_ids[tenant]]})


async def _assigned_everywhere(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await _admin_post(world, "/api/v1/assignments", {
            "manager_user_id": await _spare_manager(world, "lister"),
            "dealer_ids": [world.dealer_ids[tenant]]})
    return None


async def _transfer(world: IsolationWorld, tenant: str) -> Call:
    return Call(json={"from_manager_user_id": await _spare_manager(world),
                      "to_manager_user_id": await _spare_manager(world, "successor"),
                      "dealer_ids": [world.dealer_ids[tenant]]})


async def _nothing(world: IsolationWorld, tenant: str) -> Call | None:
    return None


async def _audience(world: IsolationWorld, tenant: str) -> Call | None:
    return None if tenant else Call(json={"expression": {"term": {"product_line": "A系列"}},
                                          "page_size": 500})


async def _list_all(world: IsolationWorld, tenant: str) -> Call | None:
    return None if tenant else Call(params={"page_size": 500})


def _tag_owner(world: IsolationWorld, item: dict) -> str:
    # Derived tags name region, city and tier: each of the four tenants has its own.
    owners = {"华东-上海-一级-A系列": "east", "华南-深圳-一级-A系列": "south",
              "华东-上海-平台商-A系列": "platform", "华东-上海-二级-A系列": "sub"}
    tenant = owners.get(item["name"])
    return world.dealer_ids.get(tenant, "") if tenant else ""


# ---- notices ------------------------------------------------------------------------

_PDF = base64.b64encode(b"%PDF-1.4 isolation").decode()
_DEALER_USERS = {"east_admin": "east", "south_sales": "south", "platform_sales": "platform",
                 "sub_sales": "sub"}
_STAFF = ("admin", "finance", "region_east", "cm_east", "cm_south")


async def _notice(world: IsolationWorld, tenant: str) -> dict:
    """A must-confirm notice with an attachment, addressed to the tenant's dealer alone."""
    key = f"identity:notice:{tenant}"
    if key not in world.cache:
        world.cache[key] = (await _admin_post(world, "/api/v1/notices", {
            "title": f"隔离通知-{tenant}", "body": "只发给这一家经销商。", "category": "policy",
            "must_confirm": True, "dealer_ids": [world.dealer_ids[tenant]],
            "attachments": [{"filename": "说明.pdf", "content_type": "application/pdf",
                             "content_base64": _PDF}]}))["notice"]
    return world.cache[key]


async def _notice_call(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"notice_id": (await _notice(world, tenant))["id"]})


async def _attachment_call(world: IsolationWorld, tenant: str) -> Call:
    notice = await _notice(world, tenant)
    return Call(path_params={"notice_id": notice["id"],
                             "attachment_id": notice["attachments"][0]["id"]})


async def _notices_everywhere(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await _notice(world, tenant)
        return None
    return Call(params={"page_size": 500})


async def _new_notice(world: IsolationWorld, tenant: str) -> Call:
    return Call(json={"title": "隔离发布", "body": "正文", "category": "other",
                      "dealer_ids": [world.dealer_ids[tenant]]})


def _reader(principal: str, tenant: str) -> bool:
    """A notice to one dealer reaches that dealer's users (a platform dealer's staff see
    the sub-dealer's data, but not the notices addressed to it) and HQ and managers."""
    return principal in _STAFF or _DEALER_USERS.get(principal) == tenant


def _own_dealer_user(principal: str, tenant: str) -> bool:
    return _DEALER_USERS.get(principal) == tenant


def _staff(principal: str, tenant: str) -> bool:
    return principal in _STAFF


def _notice_dealer(world: IsolationWorld, item: dict) -> str:
    return item["dealer_ids"][0] if item["dealer_ids"] else ""


_NOTICE_SPECS = [
    Endpoint("POST", "/api/v1/notices", "object", _new_notice, ok=(201,),
             permitted=_admin_or_region_manager),
    # Not complete: a platform dealer's staff see the sub-dealer's data but not the
    # notices addressed to it (tests/e2e/test_notices.py checks who sees what).
    Endpoint("GET", "/api/v1/notices", "list", _notices_everywhere,
             items=lambda body: body["notices"], dealer_of=_notice_dealer, complete=False),
    # Not permitted and answered 404: a platform dealer's user asking for the notice of
    # its sub-dealer (visible data, but the notice does not reach the platform dealer).
    Endpoint("GET", "/api/v1/notices/{notice_id}", "object", _notice_call,
             permitted=_reader, denied=(404,)),
    Endpoint("GET", "/api/v1/notices/{notice_id}/attachments/{attachment_id}", "object",
             _attachment_call, permitted=_reader, denied=(404,)),
    # Staff get 403 here; a platform dealer's user 404 (as above).
    Endpoint("POST", "/api/v1/notices/{notice_id}/confirm", "object", _notice_call,
             permitted=_own_dealer_user, denied=(403, 404)),
    Endpoint("GET", "/api/v1/notices/{notice_id}/receipts", "object", _notice_call,
             permitted=_staff, denied=(403, 404)),
    Endpoint("GET", "/api/v1/notices/{notice_id}/receipts/export", "object", _notice_call,
             permitted=_staff, denied=(403, 404)),
    Endpoint("POST", "/api/v1/notices/{notice_id}/remind", "object", _notice_call,
             permitted=_staff, denied=(403, 404)),
]

# ---- material library ---------------------------------------------------------------


async def _material(world: IsolationWorld, tenant: str) -> dict:
    """A material addressed to the tenant's dealer alone, downloaded once by its staff."""
    key = f"identity:material:{tenant}"
    if key not in world.cache:
        material = (await _admin_post(world, "/api/v1/materials", {
            "title": f"隔离素材-{tenant}", "kind": "talk_track",
            "dealer_ids": [world.dealer_ids[tenant]],
            "file": {"filename": "话术.pdf", "content_type": "application/pdf",
                     "content_base64": _PDF}}))["material"]
        async with world.client(world.staff_of[tenant]) as staff:
            response = await staff.get(f"/api/v1/materials/{material['id']}/download")
            assert response.status_code == 200, response.text
        world.cache[key] = material
    return world.cache[key]


async def _material_call(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"material_id": (await _material(world, tenant))["id"]})


async def _new_version(world: IsolationWorld, tenant: str) -> Call:
    return Call(path_params={"material_id": (await _material(world, tenant))["id"]},
                json={"filename": "话术2.pdf", "content_type": "application/pdf",
                      "content_base64": _PDF})


async def _materials_everywhere(world: IsolationWorld, tenant: str) -> Call | None:
    if tenant:
        await _material(world, tenant)
        return None
    return Call(params={"page_size": 500})


async def _new_material(world: IsolationWorld, tenant: str) -> Call:
    return Call(json={"title": "隔离发布素材", "kind": "training",
                      "dealer_ids": [world.dealer_ids[tenant]],
                      "file": {"filename": "培训.pdf", "content_type": "application/pdf",
                               "content_base64": _PDF}})


_MATERIAL_SPECS = [
    Endpoint("POST", "/api/v1/materials", "object", _new_material, ok=(201,),
             permitted=_admin_or_region_manager),
    # HQ's materials: only HQ admins add versions (staff 403, a platform dealer's user
    # 404 for its sub-dealer's material, which does not reach it).
    Endpoint("POST", "/api/v1/materials/{material_id}/versions", "object", _new_version,
             ok=(201,), permitted=only("admin"), denied=(403, 404)),
    # Not complete, as for notices.
    Endpoint("GET", "/api/v1/materials", "list", _materials_everywhere,
             items=lambda body: body["materials"], dealer_of=_notice_dealer, complete=False),
    Endpoint("GET", "/api/v1/materials/{material_id}/download", "object", _material_call,
             permitted=_reader, denied=(404,)),
    Endpoint("GET", "/api/v1/material-usage", "list", _materials_everywhere,
             items=lambda body: body["usage"], dealer_of=lambda w, item: item["dealer_id"],
             permitted=_staff),
]

SPECS = [
    Endpoint("GET", "/api/v1/org-units", "list", _list_all,
             items=lambda body: body["org_units"], dealer_of=lambda w, item: item["id"]),
    Endpoint("GET", "/api/v1/org-units/{org_unit_id}", "object", _dealer),
    Endpoint("PATCH", "/api/v1/org-units/{org_unit_id}", "object", _same_name,
             permitted=only("admin")),
    Endpoint("GET", "/api/v1/tags", "list", _list_all, items=lambda body: body["tags"],
             dealer_of=_tag_owner),
    Endpoint("POST", "/api/v1/dealer-tags", "object", _tags,
             permitted=_admin_or_region_manager),
    Endpoint("POST", "/api/v1/dealer-tags/remove", "object", _tags,
             permitted=_admin_or_region_manager),
    Endpoint("POST", "/api/v1/audiences/query", "list", _audience,
             items=lambda body: body["dealers"], dealer_of=lambda w, item: item["id"]),
    Endpoint("POST", "/api/v1/users", "object", _new_user,
             permitted=_admin_or_own_dealer_admin, ok=(201,), fresh=True),
    Endpoint("GET", "/api/v1/users", "list", _list_all, items=lambda body: body["users"],
             dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("GET", "/api/v1/users/{user_id}", "object", _user),
    Endpoint("PUT", "/api/v1/users/{user_id}/roles", "object", _roles,
             permitted=_admin_or_own_dealer_admin),
    Endpoint("POST", "/api/v1/users/{user_id}/password", "object", _password,
             permitted=_admin_or_own_dealer_admin, ok=(204,)),
    Endpoint("POST", "/api/v1/users/{user_id}/deactivate", "object", _deactivate,
             permitted=_admin_or_own_dealer_admin, fresh=True, unchanged=_still_active),
    Endpoint("POST", "/api/v1/assignments", "object", _assign,
             permitted=_admin_or_region_manager),
    Endpoint("POST", "/api/v1/assignments/remove", "object", _assign,
             permitted=_admin_or_region_manager),
    Endpoint("GET", "/api/v1/assignments", "list", _assigned_everywhere,
             items=lambda body: body["assignments"],
             dealer_of=lambda w, item: item["dealer_id"]),
    Endpoint("POST", "/api/v1/assignments/transfer", "object", _transfer,
             permitted=only("admin")),
    Endpoint("GET", "/api/v1/scope", "list", _nothing,
             items=lambda body: [{"dealer_id": d} for d in body["dealer_ids"]],
             dealer_of=lambda w, item: item["dealer_id"], complete=False,
             note="finance and admin answer all_dealers with no ids"),
    Endpoint("GET", "/api/v1/audit-events", "list", _list_all,
             items=lambda body: body["audit_events"],
             dealer_of=lambda w, item: item["target_id"], permitted=only("admin"),
             complete=False),
    *_NOTICE_SPECS,
    *_MATERIAL_SPECS,
]

EXEMPT = {
    ("POST", "/api/v1/auth/login"): "public: signs in, reads no dealer data",
    ("POST", "/api/v1/auth/refresh"): "public: exchanges a refresh token for the same user",
    ("POST", "/api/v1/auth/logout"): "revokes the caller's own refresh token only",
    ("GET", "/api/v1/auth/me"): "the caller's own user record only",
    ("POST", "/api/v1/auth/password"): "changes the caller's own password only",
    ("POST", "/api/v1/org-units"): "HQ-admin-only creation of structure; addresses no "
                                   "existing tenant object (role checks: tests/identity)",
    ("POST", "/api/v1/dealers/import"): "HQ-admin-only bulk import (tests/identity/"
                                        "test_import.py checks the role)",
}
