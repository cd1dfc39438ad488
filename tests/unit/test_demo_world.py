"""The demo's planned world is one the suite accepts: hospital names registration tells
apart (a medium world once had "中医医院第二分院" and "中医医院第2分院", which its import
refused as one hospital) and
addresses it does not take for one place, valid codes, and the same world on every run."""

from __future__ import annotations

from stdnum.cn import uscc

from shared.text import normalize_name
from suite.demo.world import Scale, plan


def test_a_medium_world_names_each_hospital_once_as_registration_reads_names():
    world = plan(Scale.named("medium"))
    keys = [(h.city_code, normalize_name(h.name)) for h in world.hospitals]
    assert len(keys) == len(set(keys)) == Scale.named("medium").hospitals
    # Two at one address are one hospital to registration too.
    assert len({h.address for h in world.hospitals}) == len(world.hospitals)
    assert all(uscc.is_valid(h.credit_code) for h in world.hospitals)
    assert len({h.credit_code for h in world.hospitals}) == len(world.hospitals)


def test_the_same_seed_plans_the_same_world():
    first, second = plan(Scale.named("small")), plan(Scale.named("small"))
    assert [h.name for h in first.hospitals] == [h.name for h in second.hospitals]
    assert [d.credit_code for d in first.dealers] == [d.credit_code for d in second.dealers]
    assert [o.client_order_ref for o in first.orders] == [o.client_order_ref
                                                          for o in second.orders]


def test_a_full_world_spreads_registrations_over_each_citys_hospitals():
    world = plan(Scale.named("full"))
    hospitals = {r.hospital for r in world.registrations}
    # A twentieth at most are conflicts on a hospital another dealer registered.
    assert len(hospitals) >= len(world.registrations) * 0.9


async def test_an_expired_token_is_renewed_once_for_every_worker_that_finds_it_expired():
    """A long demo outlives its 15-minute access token: the 32 workers that meet the 401
    at once sign in again once between them, and none fails for want of a token."""
    import asyncio

    import httpx

    from suite.demo.loader import Gateway

    sign_ins = 0

    async def gateway(request: httpx.Request) -> httpx.Response:
        nonlocal sign_ins
        if request.url.path == "/api/v1/auth/login":
            sign_ins += 1
            await asyncio.sleep(0.01)
            return httpx.Response(200, json={"access_token": f"token-{sign_ins}"})
        if request.headers["Authorization"] == "Bearer token-1":  # the expired one
            return httpx.Response(401, json={"title": "expired"})
        return httpx.Response(200, json={"ok": True})

    client = Gateway("http://demo", concurrency=32)
    client.client = httpx.AsyncClient(base_url="http://demo",
                                      transport=httpx.MockTransport(gateway))
    try:
        await client.login("admin", "secret")
        answers = await asyncio.gather(*(client.call("admin", "GET", "/api/v1/users")
                                         for _ in range(32)))
    finally:
        await client.close()
    assert answers == [{"ok": True}] * 32
    assert sign_ins == 2
