"""Dealer health: the facts events bring (logins, orders, uploads, registrations,
statements), HQ's policy, the riskiest-first lists, and the sweep that flags dealers
turning at risk to their channel managers and tells dealers of registrations about to
lose protection."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from services.engagement import messages
from services.engagement.domain.health import (
    Health,
    HealthPolicy,
    evaluate,
    needs_flag,
    riskiest_first,
    validate_policy,
)
from services.engagement.domain.inbox import Notice
from services.engagement.usecases import access, inbox
from services.engagement.usecases.ports import EngagementUnitOfWork
from shared.clock import Clock
from shared.context import Principal
from shared.errors import NotFound
from shared.events.engagement import DEALER_AT_RISK
from shared.ids import IdSource
from shared.pagination import Page, PageRequest, page_of_all
from shared.scope import Scopes

STATUS_WORDS = {"at_risk": "有风险", "inactive": "不活跃"}


# ------------------------------------------------------------------------ facts
async def touch(dealer_id: str, *, uow: EngagementUnitOfWork, **moments: datetime) -> None:
    """A login, order or upload of the dealer at these moments."""
    if not dealer_id:
        return
    async with uow:
        await uow.health.touch(dealer_id, **moments)
        await uow.commit()


async def flow_covered(dealer_id: str, until: date, uploaded_at: datetime, *,
                       uow: EngagementUnitOfWork) -> None:
    async with uow:
        await uow.health.cover_flow(dealer_id, until, uploaded_at)
        await uow.commit()


async def registration_changed(registration_id: str, dealer_id: str, is_open: bool,
                               protected_until: datetime | None, *,
                               uow: EngagementUnitOfWork) -> None:
    async with uow:
        await uow.health.put_registration(registration_id, dealer_id, is_open, protected_until)
        await uow.commit()


async def statement_changed(statement_id: str, dealer_id: str, issued_at: datetime,
                            confirmed: bool, *, uow: EngagementUnitOfWork) -> None:
    async with uow:
        await uow.health.put_statement(statement_id, dealer_id, issued_at, confirmed)
        await uow.commit()


# ----------------------------------------------------------------------- policy
async def get_policy(*, who: Principal, uow: EngagementUnitOfWork) -> HealthPolicy:
    access.require_staff(who, "the health policy")
    async with uow.read():
        return await uow.health.policy()


async def set_policy(policy: HealthPolicy, *, who: Principal,
                     uow: EngagementUnitOfWork) -> HealthPolicy:
    access.require(who, access.CONFIGURERS, "setting the health policy")
    validate_policy(policy)
    async with uow:
        await uow.health.set_policy(policy)
        await uow.commit()
    return policy


# ------------------------------------------------------------------------ views
async def list_health(page: PageRequest, *, manager_user_id: str = "", status: str = "",
                      who: Principal, uow: EngagementUnitOfWork, scopes: Scopes,
                      clock: Clock) -> Page[Health]:
    """The dealers the caller sees (only one manager's when named), riskiest first."""
    scope = await access.scope_of(who, scopes)
    async with uow.read():
        dealers = access.visible(scope)
        if manager_user_id:
            managed = await uow.directory.dealers_of(manager_user_id)
            dealers = managed if dealers is None else managed & dealers
        facts = await uow.health.all_facts(dealers)
        policy = await uow.health.policy()
    healths = [evaluate(f, policy, clock.now()) for f in facts]
    if status:
        healths = [h for h in healths if h.status.value == status]
    return page_of_all(riskiest_first(healths), page)


async def get_health(dealer_id: str, *, who: Principal, uow: EngagementUnitOfWork,
                     scopes: Scopes, clock: Clock) -> Health:
    scope = await access.scope_of(who, scopes)
    scope.require(dealer_id)
    async with uow.read():
        facts = await uow.health.facts(dealer_id)
        policy = await uow.health.policy()
    if facts is None:
        raise NotFound(f"dealer {dealer_id} not found")
    return evaluate(facts, policy, clock.now())


# ------------------------------------------------------------------------ sweep
async def sweep_health(*, uow: EngagementUnitOfWork, clock: Clock, ids: IdSource) -> dict:
    """Flag every dealer that got worse since its managers were last told (an event and
    an inbox item each), note recoveries silently, and tell dealers whose registrations
    lose protection within the policy's notice days."""
    now = clock.now()
    flagged = 0
    async with uow:
        if not await uow.exclusive("engagement.health_sweep"):
            return {"flagged": 0, "expiring": 0}
        policy = await uow.health.policy()
        for facts in await uow.health.all_facts(None):
            health = evaluate(facts, policy, now)
            if needs_flag(health):
                flagged += 1
                uow.events.record(DEALER_AT_RISK, messages.dealer_at_risk(health),
                                  facts.dealer_id)
                await inbox.deliver(_at_risk_notice(health), facts.manager_user_ids,
                                    f"dealer.at_risk:{facts.dealer_id}:{now:%Y%m%d%H%M%S}",
                                    uow=uow, clock=clock, ids=ids)
            if health.status != facts.flagged:
                await uow.health.set_flagged(facts.dealer_id, health.status.value)
        expiring = (await uow.health.expiring(now + timedelta(days=policy.expiring_notice_days))
                    if policy.expiring_notice_days else [])
        for registration_id, dealer_id, until in expiring:
            await inbox.deliver(Notice(
                "registration.expiring", "报备即将到期",
                f"报备 {registration_id} 的保护期将于 {until:%Y-%m-%d} 结束，请及时续期或推进。",
                "registration", registration_id, dealer_id),
                await uow.directory.staff_of(dealer_id),
                f"registration.expiring:{registration_id}:{until:%Y%m%d}",
                uow=uow, clock=clock, ids=ids)
            await uow.health.expiry_noticed(registration_id)
        await uow.commit()
    return {"flagged": flagged, "expiring": len(expiring)}


def _at_risk_notice(health: Health) -> Notice:
    facts = health.facts
    words = STATUS_WORDS.get(health.status.value, "")
    return Notice("dealer.at_risk", f"经销商{words}：{facts.name or facts.dealer_id}",
                  "；".join(health.reasons), "dealer", facts.dealer_id, facts.dealer_id)
