"""Every identity change that can alter a scope is published (through the outbox) on its
subject, so other services can drop cached scopes; payloads carry what changed."""

from __future__ import annotations

import nats
from qudao.identity.v1 import events_pb2

from shared.bus.envelope import decode_envelope
from tests.harness import eventually
from tests.identity.helpers import Admin


async def test_changes_are_published(suite):
    received: list = []
    nc = await nats.connect(suite.nats.url)

    async def record(message) -> None:
        received.append(decode_envelope(message.subject, message.data))

    await nc.subscribe("qudao.identity.>", cb=record)
    admin = await Admin.login(suite)
    try:
        region = await admin.region("east", "华东")
        dealer = await admin.dealer(1, region["id"])
        hq = await admin.hq_id()
        manager = await admin.user("cm.events", ["channel_manager"], hq)
        successor = await admin.user("cm.next", ["channel_manager"], hq)
        await admin.ok("PATCH", f"/api/v1/org-units/{dealer['id']}", json={"tier": "two"})
        await admin.ok("POST", "/api/v1/dealer-tags",
                       json={"dealer_ids": [dealer["id"]], "tags": ["VIP"]})
        await admin.ok("POST", "/api/v1/assignments",
                       json={"manager_user_id": manager["id"], "dealer_ids": [dealer["id"]]})
        await admin.ok("PUT", f"/api/v1/users/{successor['id']}/roles",
                       json={"roles": ["channel_manager", "region_manager"]})
        await admin.ok("POST", f"/api/v1/users/{manager['id']}/deactivate",
                       json={"successor_user_id": successor["id"]})
        expected = ["qudao.identity.org_unit.created", "qudao.identity.user.created",
                    "qudao.identity.org_unit.updated", "qudao.identity.dealer_tags.changed",
                    "qudao.identity.assignment.changed", "qudao.identity.user_roles.changed",
                    "qudao.identity.user.deactivated"]
        await eventually(lambda: {e.subject for e in received} >= set(expected), timeout=5)
        by_subject = {e.subject: e.payload for e in received}
        updated = by_subject["qudao.identity.org_unit.updated"]
        assert isinstance(updated, events_pb2.OrgUnitUpdated)
        assert "tier" in updated.changed_fields and "derived_tags" in updated.changed_fields
        assert updated.previous.derived_tags == ["华东-上海-一级-A系列"]
        tags = by_subject["qudao.identity.dealer_tags.changed"]
        assert list(tags.added) == ["VIP"] or "VIP" in tags.custom_tags
        transfers = [e.payload for e in received
                     if e.subject == "qudao.identity.assignment.changed"
                     and e.payload.kind == events_pb2.ASSIGNMENT_CHANGE_KIND_TRANSFERRED]
        assert transfers and transfers[0].to_manager_user_id == successor["id"]
        # Changes carry who made them; a login is made by someone not yet signed in, and
        # names the user in its payload.
        logins = [e for e in received if e.subject == "qudao.identity.user.logged_in"]
        assert logins and all(e.payload.user_id for e in logins)
        assert all(e.envelope.principal.startswith("user:") for e in received
                   if e not in logins)
    finally:
        await admin.aclose()
        await nc.close()
