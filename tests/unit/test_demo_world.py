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


def test_activity_is_skewed_by_dealer_tier_and_region():
    """Real channels are skewed: a few dealers do much of the business, platform and
    tier-one dealers more than tier two, the coast more than the north-west (a world
    where every region had exactly 1,000 registrations looked made up)."""
    from collections import Counter

    world = plan(Scale.named("medium"))
    per_dealer = sorted(Counter(r.dealer for r in world.registrations).values())
    assert per_dealer[-1] >= 5 * per_dealer[len(per_dealer) // 2], per_dealer
    orders = Counter(o.dealer for o in world.orders)
    busiest = sum(count for _, count in orders.most_common(len(world.dealers) // 10))
    assert busiest > len(world.orders) * 0.3, busiest
    regions = Counter(world.dealer(r.dealer).region_code for r in world.registrations)
    assert regions["east"] > 2 * regions["northwest"], regions
    per_tier = Counter(world.dealer(o.dealer).tier for o in world.orders)
    tiers = Counter(d.tier for d in world.dealers)
    assert per_tier["one"] / tiers["one"] > per_tier["two"] / tiers["two"], per_tier
    # A dealer never registers one hospital for one product line twice.
    keys = [(r.dealer, r.hospital, r.product_line) for r in world.registrations]
    assert len(keys) == len(set(keys))


def test_the_plan_works_the_pipeline_the_pool_and_the_money():
    from collections import Counter

    from suite.demo.world import STAGES

    world = plan(Scale.named("small"))
    stages = Counter(r.stage for r in world.registrations if r.outcome == "approve")
    assert set(stages) == set(STAGES) and stages[STAGES[0]] > stages[STAGES[-1]], stages
    assert {lead.fate for lead in world.leads} == {"claim", "release", "reassign", "open"}
    registered = {r.hospital for r in world.registrations}
    assert not registered & {lead.hospital for lead in world.leads}
    for lead in world.leads:
        if lead.fate == "reassign":
            dealer = world.dealer(lead.dealer)
            assert dealer.tier == "two" and lead.product_line in dealer.product_lines
            assert dealer.city_code == world.hospitals[lead.hospital].city_code
    payments = Counter(o.payment for o in world.orders if o.fate == "receive")
    assert payments["full"] and payments["part"] and payments["none"] and payments[""]
    assert {o.payment for o in world.orders if o.fate != "receive"} == {""}
    assert [confirms for _, confirms in world.statements].count(False) >= 1


async def test_a_request_the_suite_asks_to_send_again_is_sent_again():
    """A registration submitted while another dealer's claim on the hospital is decided
    is answered 409 with reason RETRY (nothing stored): the demo sends it again instead
    of stopping (a medium world once stopped there)."""
    import httpx

    from suite.demo.loader import Gateway

    answers = [httpx.Response(409, json={"reason": "RETRY", "detail": "submit again"}),
               httpx.Response(201, json={"id": "r1"})]

    async def gateway(request: httpx.Request) -> httpx.Response:
        return answers.pop(0)

    client = Gateway("http://demo", concurrency=1)
    client.client = httpx.AsyncClient(base_url="http://demo",
                                      transport=httpx.MockTransport(gateway))
    client.tokens["admin"] = "token"
    try:
        assert await client.call("admin", "POST", "/api/v1/registrations", json={}) == {
            "id": "r1"}
    finally:
        await client.close()
    assert not answers
