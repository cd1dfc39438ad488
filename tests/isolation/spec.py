"""The isolation spec format and its runner.

Every gateway route under /api/v1 that reads or writes dealer-owned data is described by
one ``Endpoint`` in a ``tests/isolation/specs_<service>.py`` module (listed in that
module's ``SPECS``); routes that concern no dealer's data are listed with a reason in the
module's ``EXEMPT``. ``test_coverage.py`` fails for a route in neither.

Two kinds of endpoint:

``object`` — one object per tenant (dealer). ``setup(world, tenant)`` returns a
``Call``: the path parameters (and optionally query params and JSON body) that address
*that tenant's* object, creating it if needed (keep things in ``world.cache``). For every
principal × tenant the runner sends the request and expects:

* tenant visible to the principal and ``permitted(principal, tenant)`` → a status in ``ok``;
* tenant visible but not permitted (the role may not do this) → a status in ``denied``
  (403 by default);
* tenant not visible → 404 (never 403: ids leak nothing).

If the request changes things (``fresh=True``), ``setup`` runs again for every attempt so
each attempt meets an untouched object; with ``unchanged`` the runner also checks, after
a refused attempt, that nothing changed.

``list`` — a collection. ``setup(world, tenant)`` runs once per tenant to make sure each
has at least one item, then once with tenant "" for the list request itself (its ``Call``,
or an empty one). ``items(json)`` picks the items out of the response and
``dealer_of(world, item)`` names each item's dealer id. For every principal the runner
expects a status in ``ok`` (``denied`` when ``permitted(principal, "")`` is false), every
listed item's dealer among the principal's visible tenants (other known tenants' items
never appear), and — when ``complete`` — every visible tenant's item present.

Principals and tenants are defined in ``world.py`` (``VISIBLE`` is the expected scope).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from tests.isolation.world import PRINCIPALS, TENANTS, IsolationWorld


@dataclass
class Call:
    path_params: dict[str, str] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    json: Any = None


def everyone(principal: str, tenant: str) -> bool:
    return True


def only(*principals: str) -> Callable[[str, str], bool]:
    allowed = frozenset(principals)
    return lambda principal, tenant: principal in allowed


@dataclass(frozen=True)
class Endpoint:
    method: str
    route: str
    kind: Literal["object", "list"]
    setup: Callable[[IsolationWorld, str], Awaitable[Call | None]]
    permitted: Callable[[str, str], bool] = everyone
    ok: tuple[int, ...] = (200,)
    denied: tuple[int, ...] = (403,)
    fresh: bool = False
    unchanged: Callable[[IsolationWorld, str, Call], Awaitable[bool]] | None = None
    items: Callable[[dict], list[dict]] | None = None
    dealer_of: Callable[[IsolationWorld, dict], str] | None = None
    complete: bool = True
    principals: tuple[str, ...] = PRINCIPALS
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return self.method.upper(), self.route


async def _send(world: IsolationWorld, principal: str, endpoint: Endpoint, call: Call):
    path = endpoint.route.format(**call.path_params)
    async with world.client(principal) as client:
        return await client.request(endpoint.method.upper(), path, params=call.params or None,
                                    json=call.json)


def _body(response):
    """The JSON body, or a CSV export's rows as dicts by header."""
    if response.headers.get("content-type", "").startswith("text/csv"):
        return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    return response.json()


async def check(world: IsolationWorld, endpoint: Endpoint) -> list[str]:
    """Run one endpoint for every principal; return the failures (empty when isolated)."""
    failures: list[str] = []
    name = f"{endpoint.method.upper()} {endpoint.route}"
    if endpoint.kind == "list":
        for tenant in TENANTS:
            await endpoint.setup(world, tenant)
        call = (await endpoint.setup(world, "")) or Call()
        for principal in endpoint.principals:
            response = await _send(world, principal, endpoint, call)
            if not endpoint.permitted(principal, ""):
                if response.status_code not in endpoint.denied:
                    failures.append(f"{name} as {principal} (role not permitted): expected "
                                    f"{endpoint.denied}, got {response.status_code}")
                continue
            if response.status_code not in endpoint.ok:
                failures.append(f"{name} as {principal}: {response.status_code} {response.text}")
                continue
            seen = set()
            for item in endpoint.items(_body(response)):
                tenant = world.tenant_of(endpoint.dealer_of(world, item))
                if tenant is None:
                    continue
                seen.add(tenant)
                if tenant not in world.visible(principal):
                    failures.append(f"{name} as {principal}: lists {tenant}'s item {item}")
            missing = world.visible(principal) - seen
            if endpoint.complete and missing:
                failures.append(f"{name} as {principal}: misses items of {sorted(missing)}")
        return failures
    prepared: dict[str, Call] = {}
    for principal in endpoint.principals:
        for tenant in TENANTS:
            if endpoint.fresh or tenant not in prepared:
                prepared[tenant] = await endpoint.setup(world, tenant)
            call = prepared[tenant]
            response = await _send(world, principal, endpoint, call)
            if tenant not in world.visible(principal):
                expected, why = (404,), "another tenant's object"
            elif endpoint.permitted(principal, tenant):
                expected, why = endpoint.ok, "in scope and permitted"
            else:
                expected, why = endpoint.denied, "in scope, role not permitted"
            if response.status_code not in expected:
                failures.append(f"{name} as {principal} on {tenant} ({why}): expected "
                                f"{expected}, got {response.status_code} {response.text[:300]}")
            elif (response.status_code >= 400 and endpoint.unchanged is not None
                  and not await endpoint.unchanged(world, tenant, call)):
                failures.append(f"{name} as {principal} on {tenant}: refused but changed")
    return failures
