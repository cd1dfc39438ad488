"""Dealer health on in-memory fakes: facts from events judged by HQ's policy, at-risk
dealers flagged once to their channel managers, lists riskiest first and scoped, and
registrations about to lose protection told to the dealer."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from services.engagement.domain.health import (
    DealerFacts,
    HealthPolicy,
    HealthStatus,
    evaluate,
)
from services.engagement.usecases import health
from shared.context import Principal
from shared.errors import InvalidArgument, NotFound, PermissionDenied
from shared.events.engagement import DEALER_AT_RISK
from shared.pagination import PageRequest
from tests.service.engagement.support import ADMIN, CM, EAST_STAFF, REGION, build_world

NOW = datetime(2026, 3, 20, 9, 0, tzinfo=UTC)
PAGE = PageRequest(size=50)
LONG_AGO = NOW - timedelta(days=400)


def facts(**given) -> DealerFacts:
    healthy = dict(dealer_id="d", name="甲", created_at=LONG_AGO, last_login_at=NOW,
                   last_order_at=NOW - timedelta(days=3), flow_covered_until=date(2026, 2, 28))
    return DealerFacts(**{**healthy, **given})


def test_a_dealer_that_orders_logs_in_and_reports_is_healthy():
    judged = evaluate(facts(), HealthPolicy(), NOW)
    assert (judged.status, judged.risk_score, judged.reasons) == (HealthStatus.HEALTHY, 0, ())


def test_no_order_in_thirty_days_puts_a_dealer_at_risk():
    judged = evaluate(facts(last_order_at=NOW - timedelta(days=41)), HealthPolicy(), NOW)
    assert judged.status is HealthStatus.AT_RISK
    assert judged.reasons == ("no order in 41 days",)


def test_no_order_and_no_login_is_inactive():
    judged = evaluate(facts(last_order_at=None, last_login_at=NOW - timedelta(days=60)),
                      HealthPolicy(), NOW)
    assert judged.status is HealthStatus.INACTIVE
    assert judged.reasons == ("no order since it joined 400 days ago", "no login in 60 days")


def test_the_last_closed_months_flow_is_due_after_the_grace_days():
    stale = facts(flow_covered_until=date(2026, 1, 31))
    assert evaluate(stale, HealthPolicy(), NOW).reasons == ("no sell-through upload for 2026-02",)
    within_grace = datetime(2026, 3, 8, tzinfo=UTC)
    assert evaluate(replace(stale, last_order_at=within_grace), HealthPolicy(),
                    within_grace).status is HealthStatus.HEALTHY
    off = HealthPolicy(require_flow_for_last_closed_month=False)
    assert evaluate(stale, off, NOW).status is HealthStatus.HEALTHY


def test_a_dealer_that_just_joined_is_not_judged_for_before_it_existed():
    new = facts(created_at=NOW - timedelta(days=5), last_order_at=None, last_login_at=None,
                flow_covered_until=None)
    assert evaluate(new, HealthPolicy(), NOW).status is HealthStatus.HEALTHY


def test_unconfirmed_statements_count_once_past_the_confirmation_days():
    judged = evaluate(facts(unconfirmed_statements=(NOW - timedelta(days=20),
                                                    NOW - timedelta(days=3))),
                      HealthPolicy(), NOW)
    assert judged.overdue_statements == 1
    assert judged.reasons == ("1 statement(s) unconfirmed after 15 days",)


async def _world():
    deps = await build_world(joined=NOW - timedelta(days=400))
    deps.clock.moment = NOW
    uow = deps.uow()
    await health.touch("east", uow=uow, last_order_at=NOW - timedelta(days=2),
                       last_login_at=NOW - timedelta(days=1))
    await health.flow_covered("east", date(2026, 2, 28), NOW - timedelta(days=15), uow=uow)
    await health.touch("south", uow=uow, last_order_at=NOW - timedelta(days=45),
                       last_login_at=NOW - timedelta(days=1))
    await health.flow_covered("south", date(2026, 2, 28), NOW - timedelta(days=15), uow=uow)
    return deps


async def sweep(deps):
    return await health.sweep_health(uow=deps.uow(), clock=deps.clock, ids=deps.ids)


async def test_an_at_risk_dealer_is_flagged_to_its_manager_once():
    deps = await _world()
    assert (await sweep(deps))["flagged"] == 1
    assert (await sweep(deps))["flagged"] == 0
    (flag,) = deps.uow().published_of(DEALER_AT_RISK)
    assert flag.health.dealer_id == "south" and list(flag.health.reasons) == [
        "no order in 45 days"]
    (item,) = deps.uow().inbox.items.values()
    assert (item.user_id, item.kind, item.ref_id) == ("cm", "dealer.at_risk", "south")
    assert item.title == "经销商有风险：深圳南方器械"
    # Getting worse (no login either) is told again; recovering is not.
    deps.clock.advance(days=40)
    await health.touch("east", uow=deps.uow(), last_order_at=deps.clock.now(),
                       last_login_at=deps.clock.now())
    await health.flow_covered("east", date(2026, 3, 31), deps.clock.now(), uow=deps.uow())
    await sweep(deps)
    statuses = [f.health.status for f in deps.uow().published_of(DEALER_AT_RISK)]
    assert len(statuses) == 2 and statuses[-1] == 3  # HEALTH_STATUS_INACTIVE


async def test_the_managers_list_is_riskiest_first_and_scoped():
    deps = await _world()
    page = await health.list_health(PAGE, manager_user_id="cm", who=ADMIN, uow=deps.uow(),
                                    scopes=deps.scopes, clock=deps.clock)
    assert [(h.facts.dealer_id, h.status) for h in page.items] == [
        ("south", HealthStatus.AT_RISK), ("east", HealthStatus.HEALTHY)]
    assert page.items[0].facts.manager_user_ids == ("cm",)
    at_risk = await health.list_health(PAGE, status="at_risk", who=CM, uow=deps.uow(),
                                       scopes=deps.scopes, clock=deps.clock)
    assert [h.facts.dealer_id for h in at_risk.items] == ["south"]
    region = await health.list_health(PAGE, who=REGION, uow=deps.uow(), scopes=deps.scopes,
                                      clock=deps.clock)
    assert [h.facts.dealer_id for h in region.items] == ["east"]
    own = await health.get_health("east", who=EAST_STAFF, uow=deps.uow(), scopes=deps.scopes,
                                  clock=deps.clock)
    assert own.facts.last_order_at == NOW - timedelta(days=2)
    with pytest.raises(NotFound):
        await health.get_health("south", who=EAST_STAFF, uow=deps.uow(), scopes=deps.scopes,
                                clock=deps.clock)


async def test_open_registrations_and_statements_come_from_their_events():
    deps = await _world()
    uow = deps.uow()
    await health.registration_changed("r1", "east", True, None, uow=uow)
    await health.registration_changed("r2", "east", True, NOW + timedelta(days=90), uow=uow)
    await health.registration_changed("r1", "east", False, None, uow=uow)
    await health.statement_changed("s1", "east", NOW - timedelta(days=30), False, uow=uow)
    await health.statement_changed("s2", "east", NOW - timedelta(days=30), False, uow=uow)
    await health.statement_changed("s2", "east", NOW - timedelta(days=30), True, uow=uow)
    found = await health.get_health("east", who=ADMIN, uow=uow, scopes=deps.scopes,
                                    clock=deps.clock)
    assert (found.facts.open_registrations, found.overdue_statements) == (1, 1)
    assert found.status is HealthStatus.AT_RISK


async def test_a_registration_about_to_lose_protection_is_told_to_the_dealer_once():
    deps = await _world()
    uow = deps.uow()
    await health.registration_changed("r1", "east", True, NOW + timedelta(days=10), uow=uow)
    await health.registration_changed("r2", "east", True, NOW + timedelta(days=60), uow=uow)
    assert (await sweep(deps))["expiring"] == 1
    assert (await sweep(deps))["expiring"] == 0
    told = sorted((i.user_id, i.kind, i.ref_id) for i in uow.inbox.items.values()
                  if i.kind == "registration.expiring")
    assert told == [("east-1", "registration.expiring", "r1"),
                    ("east-2", "registration.expiring", "r1")]
    # Renewed: told again before the new end.
    await health.registration_changed("r1", "east", True, NOW + timedelta(days=12), uow=uow)
    assert (await sweep(deps))["expiring"] == 1


async def test_hq_sets_the_policy_and_bad_values_are_named():
    deps = await _world()
    stricter = HealthPolicy(max_days_without_order=60)
    assert await health.set_policy(stricter, who=ADMIN, uow=deps.uow()) == stricter
    assert await health.get_policy(who=CM, uow=deps.uow()) == stricter
    south = await health.get_health("south", who=ADMIN, uow=deps.uow(), scopes=deps.scopes,
                                    clock=deps.clock)
    assert south.status is HealthStatus.HEALTHY
    with pytest.raises(PermissionDenied):
        await health.set_policy(stricter, who=CM, uow=deps.uow())
    with pytest.raises(PermissionDenied):
        await health.get_policy(who=EAST_STAFF, uow=deps.uow())
    with pytest.raises(InvalidArgument) as refused:
        await health.set_policy(HealthPolicy(max_days_without_order=-1,
                                             flow_upload_grace_days=40), who=ADMIN,
                                uow=deps.uow())
    assert {v.field for v in refused.value.violations} == {
        "policy.max_days_without_order", "policy.flow_upload_grace_days"}
    assert await health.get_policy(who=ADMIN, uow=deps.uow()) == stricter


async def test_a_dealer_no_event_named_is_not_found():
    deps = await _world()
    nobody = Principal(subject="user:x", user_id="x", roles=frozenset({"hq_admin"}))
    deps.scopes.allow(nobody, all_dealers=True)
    with pytest.raises(NotFound):
        await health.get_health("ghost", who=nobody, uow=deps.uow(), scopes=deps.scopes,
                                clock=deps.clock)
