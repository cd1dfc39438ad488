"""Every event the engagement service reacts to, in one place: the subscriptions and
their handlers (thin: event payload → signals, facts or notices → use case). Recipients
come from identity's events (people, org units, assignments) kept here."""

from __future__ import annotations

from datetime import UTC, date, datetime

from qudao.identity.v1 import identity_pb2
from qudao.order.v1 import order_pb2

from services.engagement.domain.inbox import Notice
from services.engagement.domain.people import Person
from services.engagement.domain.signals import Signal
from services.engagement.usecases import directory, health, inbox, sop
from services.engagement.usecases.ports import Deps
from shared.bus.consumer import Subscription
from shared.bus.envelope import Event
from shared.convert import from_timestamp
from shared.events.flow import FLOW_UPLOAD_ACCEPTED
from shared.events.identity import (
    ASSIGNMENT_CHANGED,
    NOTICE_PUBLISHED,
    NOTICE_REMINDED,
    ORG_UNIT_CREATED,
    ORG_UNIT_UPDATED,
    USER_CREATED,
    USER_DEACTIVATED,
    USER_LOGGED_IN,
    USER_ROLES_CHANGED,
)
from shared.events.incentive import REBATE_CREDITED
from shared.events.order import (
    ORDER_APPROVED,
    ORDER_CANCELLED,
    ORDER_REJECTED,
    ORDER_SUBMITTED,
    SHIPMENT_RECORDED,
    STATEMENT_CONFIRMED,
    STATEMENT_ISSUED,
)
from shared.events.registration import (
    DEALER_NOTIFIED,
    LEAD_ASSIGNED,
    LEAD_CLAIMED,
    LEAD_RETURNED,
    REGISTRATION_APPROVED,
    REGISTRATION_EXPIRED,
    REGISTRATION_NOTE_ADDED,
    REGISTRATION_RECALLED,
    REGISTRATION_REJECTED,
    REGISTRATION_RENEWED,
    REGISTRATION_STAGE_ADVANCED,
    REGISTRATION_SUBMITTED,
)

KINDS = {identity_pb2.ORG_UNIT_KIND_HQ: "hq", identity_pb2.ORG_UNIT_KIND_REGION: "region",
         identity_pb2.ORG_UNIT_KIND_DEALER: "dealer"}
CLOSING_REGISTRATION = {REGISTRATION_REJECTED.subject, REGISTRATION_RECALLED.subject,
                        REGISTRATION_EXPIRED.subject}


def _when(event: Event) -> datetime:
    return from_timestamp(event.envelope.occurred_at) or datetime.now(UTC)


def _signal(event: Event, name: str, subject_id: str, dealer_id: str = "") -> Signal:
    return Signal(name, subject_id, dealer_id, _when(event), event.event_id)


def _roles(roles) -> frozenset[str]:
    return frozenset(identity_pb2.Role.Name(role).removeprefix("ROLE_").lower()
                     for role in roles if role)


async def _notify(deps: Deps, transaction, event: Event, notice: Notice,
                  audience: str = "dealer") -> None:
    await inbox.notify(notice, audience, f"{event.event_id}:{audience}",
                       uow=deps.uow_in(transaction), clock=deps.clock, ids=deps.ids)


async def _observe(deps: Deps, transaction, *signals: Signal) -> None:
    await sop.observe(list(signals), uow=deps.uow_in(transaction), ids=deps.ids)


# ------------------------------------------------------------------------- identity
async def on_identity(deps: Deps, transaction, event: Event) -> None:
    payload = event.payload
    uow = deps.uow_in(transaction)
    subject = event.subject
    if subject in (ORG_UNIT_CREATED.subject, ORG_UNIT_UPDATED.subject):
        unit = payload.org_unit
        await directory.record_org_unit(unit.id, KINDS.get(unit.kind, "other"), unit.name,
                                        unit.region_code, from_timestamp(unit.created_at),
                                        uow=uow)
    elif subject in (USER_CREATED.subject, USER_DEACTIVATED.subject):
        user = payload.user
        await directory.record_person(Person(
            user.id, user.display_name or user.username, _roles(user.roles), user.org_unit_id,
            user.dealer_id, subject == USER_CREATED.subject and user.active), uow=uow)
    elif subject == USER_ROLES_CHANGED.subject:
        await directory.record_roles(payload.user_id, _roles(payload.roles),
                                     payload.org_unit_id, payload.dealer_id, uow=uow)
    elif subject == ASSIGNMENT_CHANGED.subject:
        def pairs(assignments):
            return [(a.manager_user_id, a.dealer_id, a.product_line) for a in assignments]
        await directory.record_assignments(pairs(payload.added), pairs(payload.removed), uow=uow)
    elif subject == USER_LOGGED_IN.subject:
        await health.touch(payload.dealer_id, uow=uow,
                           last_login_at=from_timestamp(payload.logged_in_at) or _when(event))


async def on_notice(deps: Deps, transaction, event: Event) -> None:
    """A published notice reaches the staff of the dealers identity resolved its audience
    to (the event names them: no call back per dealer); a reminder reaches the users it
    names."""
    payload = event.payload
    uow = deps.uow_in(transaction)
    if event.subject == NOTICE_PUBLISHED.subject:
        notice = payload.notice
        await inbox.notify_dealers(Notice(
            "notice.published", _clipped(notice.title, TITLE_LIMIT),
            ("【请确认阅读】" if notice.must_confirm else "") + _clipped(notice.body, BODY_LIMIT),
            "notice", notice.id), payload.dealer_ids, f"{event.event_id}:dealers",
            uow=uow, clock=deps.clock, ids=deps.ids)
    else:
        await inbox.notify_people(Notice(
            "notice.reminded", _clipped(f"提醒：{payload.title}", TITLE_LIMIT),
            f"通知「{payload.title}」尚未阅读或确认，请尽快查看。", "notice", payload.notice_id),
            [(recipient.user_id, recipient.dealer_id) for recipient in payload.recipients],
            f"{event.event_id}:recipients", uow=uow, clock=deps.clock, ids=deps.ids)


TITLE_LIMIT, BODY_LIMIT = 300, 500


def _clipped(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


# --------------------------------------------------------------------- registration
async def on_registration(deps: Deps, transaction, event: Event) -> None:
    payload = event.payload
    subject = event.subject
    uow = deps.uow_in(transaction)
    if subject == DEALER_NOTIFIED.subject:
        ref_type, ref_id = next(((kind, value) for kind, value in (
            ("conflict", payload.conflict_id), ("lead", payload.lead_id),
            ("registration", payload.registration_id)) if value), ("dealer", payload.dealer_id))
        await _notify(deps, transaction, event, Notice(
            payload.kind, _TITLES.get(payload.kind, "报备通知"), payload.message, ref_type, ref_id,
            payload.dealer_id))
        return
    if subject == REGISTRATION_NOTE_ADDED.subject:
        await _observe(deps, transaction,
                       _signal(event, "registration.note_added", payload.note.registration_id))
        return
    if subject in (LEAD_ASSIGNED.subject, LEAD_CLAIMED.subject, LEAD_RETURNED.subject):
        lead = payload.lead
        name = {LEAD_ASSIGNED.subject: "lead.assigned", LEAD_CLAIMED.subject: "lead.claimed",
                LEAD_RETURNED.subject: "lead.returned"}[subject]
        dealer = (payload.previous_dealer_id if subject == LEAD_RETURNED.subject
                  else lead.assigned_dealer_id)
        await _observe(deps, transaction, _signal(event, name, lead.id, dealer))
        return
    registration = payload.registration
    signals = []
    if subject == REGISTRATION_SUBMITTED.subject:
        signals.append(_signal(event, "registration.submitted", registration.id,
                               registration.dealer_id))
    elif subject == REGISTRATION_APPROVED.subject:
        signals.append(_signal(event, "registration.approved", registration.id,
                               registration.dealer_id))
    elif subject == REGISTRATION_STAGE_ADVANCED.subject:
        signals.append(_signal(event, "registration.stage_advanced", registration.id,
                               registration.dealer_id))
        if registration.lead_id:
            signals.append(_signal(event, "lead.qualified", registration.lead_id,
                                   registration.dealer_id))
    if signals:
        await _observe(deps, transaction, *signals)
    if subject != REGISTRATION_STAGE_ADVANCED.subject:
        await health.registration_changed(
            registration.id, registration.dealer_id, subject not in CLOSING_REGISTRATION,
            from_timestamp(registration.protected_until), uow=uow)


_TITLES = {"conflict.raised": "撞单提醒", "conflict.resolved": "撞单已裁决",
           "lead.assigned": "新线索分配", "registration.approved": "报备已通过",
           "registration.rejected": "报备被驳回", "registration.expired": "报备已过期"}


# ---------------------------------------------------------------------------- order
async def on_order(deps: Deps, transaction, event: Event) -> None:
    payload = event.payload
    subject = event.subject
    uow = deps.uow_in(transaction)
    if subject == ORDER_SUBMITTED.subject:
        order = payload.order
        submitted = from_timestamp(order.submitted_at) or _when(event)
        await health.touch(order.dealer_id, uow=uow, last_order_at=submitted)
        signals = [_signal(event, "order.submitted", order.id, order.dealer_id)]
        if order.awaiting_approval == order_pb2.APPROVAL_STAGE_CHANNEL_MANAGER:
            signals.append(_signal(event, "order.held", order.id, order.dealer_id))
            await _notify(deps, transaction, event, Notice(
                "order.held", "订单待审批",
                f"订单 {order.client_order_ref or order.id} 需要渠道经理审批"
                + ("（超出信用额度）。" if not order.credit_check.passed else "。"),
                "order", order.id, order.dealer_id), "managers")
        await _observe(deps, transaction, *signals)
    elif subject in (ORDER_APPROVED.subject, ORDER_REJECTED.subject, ORDER_CANCELLED.subject):
        order = payload.order
        if subject == ORDER_APPROVED.subject and \
                payload.stage != order_pb2.APPROVAL_STAGE_CHANNEL_MANAGER:
            return
        await _observe(deps, transaction,
                       _signal(event, "order.decided", order.id, order.dealer_id))
    elif subject == SHIPMENT_RECORDED.subject:
        shipment = payload.shipment
        units = sum(line.quantity for line in shipment.lines)
        await _notify(deps, transaction, event, Notice(
            "shipment.recorded", "货物已发出",
            f"发货单 {shipment.shipment_id}（{shipment.ship_date}）共 {units} 件"
            + (f"，{shipment.carrier} {shipment.waybill_no}" if shipment.waybill_no else "")
            + "，收货后请确认。", "shipment", shipment.shipment_id, shipment.dealer_id))
    elif subject in (STATEMENT_ISSUED.subject, STATEMENT_CONFIRMED.subject):
        statement = payload.statement
        issued = from_timestamp(statement.issued_at) or _when(event)
        confirmed = subject == STATEMENT_CONFIRMED.subject
        await health.statement_changed(statement.id, statement.dealer_id, issued, confirmed,
                                       uow=uow)
        await _observe(deps, transaction, _signal(
            event, "statement.confirmed" if confirmed else "statement.issued", statement.id,
            statement.dealer_id))
        if not confirmed:
            await _notify(deps, transaction, event, Notice(
                "statement.issued", "对账单已出具",
                f"{statement.period_start} 至 {statement.period_end} 的对账单已出具，请核对确认。",
                "statement", statement.id, statement.dealer_id))


# ------------------------------------------------------------------ incentive, flow
async def on_incentive(deps: Deps, transaction, event: Event) -> None:
    credit = event.payload
    amount = credit.amount.amount_minor / 100
    await _notify(deps, transaction, event, Notice(
        "rebate.credited", "返利已入账",
        f"{credit.description or '返利'} {amount:,.2f} {credit.amount.currency or 'CNY'} "
        "已计入您的账户。", "credit", credit.credit_id, credit.dealer_id))


async def on_flow(deps: Deps, transaction, event: Event) -> None:
    upload = event.payload
    try:
        until = date.fromisoformat(upload.period_end)
    except ValueError:
        until = _when(event).date()
    await health.flow_covered(upload.dealer_id, until,
                              from_timestamp(upload.accepted_at) or _when(event),
                              uow=deps.uow_in(transaction))


SUBSCRIPTIONS = [
    Subscription("engagement-identity", (ORG_UNIT_CREATED, ORG_UNIT_UPDATED, USER_CREATED,
                                         USER_DEACTIVATED, USER_ROLES_CHANGED,
                                         ASSIGNMENT_CHANGED, USER_LOGGED_IN), on_identity),
    Subscription("engagement-notices", (NOTICE_PUBLISHED, NOTICE_REMINDED), on_notice),
    Subscription("engagement-registration", (
        DEALER_NOTIFIED, LEAD_ASSIGNED, LEAD_CLAIMED, LEAD_RETURNED, REGISTRATION_SUBMITTED,
        REGISTRATION_APPROVED, REGISTRATION_REJECTED, REGISTRATION_RECALLED,
        REGISTRATION_EXPIRED, REGISTRATION_RENEWED, REGISTRATION_STAGE_ADVANCED,
        REGISTRATION_NOTE_ADDED), on_registration),
    Subscription("engagement-order", (ORDER_SUBMITTED, ORDER_APPROVED, ORDER_REJECTED,
                                      ORDER_CANCELLED, SHIPMENT_RECORDED, STATEMENT_ISSUED,
                                      STATEMENT_CONFIRMED), on_order),
    Subscription("engagement-incentive", (REBATE_CREDITED,), on_incentive),
    Subscription("engagement-flow", (FLOW_UPLOAD_ACCEPTED,), on_flow),
]
