"""The pipeline of an approved registration: forward only, each move renewing the
protection; notes and the next step; the funnel per region, dealer and product line
within the viewer's scope."""

from __future__ import annotations

from datetime import timedelta

import pytest

from services.registration.domain.customers import CustomerInput
from services.registration.domain.registrations import (
    AddNote,
    AdvanceStage,
    FunnelDimension,
    FunnelQuery,
    SubmitRegistration,
)
from services.registration.usecases import pipeline, registrations
from shared.errors import FailedPrecondition, InvalidArgument, NotFound
from shared.events.registration import (
    REGISTRATION_NOTE_ADDED,
    REGISTRATION_RENEWED,
    REGISTRATION_STAGE_ADVANCED,
)
from shared.pagination import PageRequest
from tests.service.registration.world import (
    DEALER_A,
    DEALER_B,
    HQ,
    MANAGER,
    RUIJIN,
    ZHONGSHAN,
    A,
    B,
    run,
    world,
)


async def approved(deps, who, customer: CustomerInput, product_line: str = "A系列"):
    submitted = await run(deps, registrations.submit_registration,
                          SubmitRegistration(product_line, new_customer=customer), who=who)
    return await run(deps, registrations.approve, submitted.registration.id, "", who=MANAGER)


async def test_forward_only_each_move_renews_protection():
    deps, uow = await world(protection_days=30)
    registration = await approved(deps, DEALER_A, ZHONGSHAN)
    deps.clock.advance(days=10)
    moved = await run(deps, pipeline.advance_stage,
                      AdvanceStage(registration.id, "needs_confirmed", "科室确认需求", "报价"),
                      who=DEALER_A)
    assert (moved.stage, moved.next_step, moved.renewal_count) == ("needs_confirmed", "报价", 1)
    assert moved.protected_until == deps.clock.now() + timedelta(days=30)
    [advanced] = uow.published_of(REGISTRATION_STAGE_ADVANCED)
    assert advanced.previous_stage == "initial_contact"
    assert len(uow.published_of(REGISTRATION_RENEWED)) == 1
    with pytest.raises(InvalidArgument) as back:
        await run(deps, pipeline.advance_stage,
                  AdvanceStage(registration.id, "initial_contact"), who=DEALER_A)
    assert back.value.violations[0].field == "stage"
    with pytest.raises(InvalidArgument):
        await run(deps, pipeline.advance_stage, AdvanceStage(registration.id, "won"),
                  who=DEALER_A)
    with pytest.raises(NotFound):
        await run(deps, pipeline.advance_stage,
                  AdvanceStage(registration.id, "quotation"), who=DEALER_B)
    pending = await run(deps, registrations.submit_registration,
                        SubmitRegistration("A系列", new_customer=RUIJIN), who=DEALER_A)
    with pytest.raises(FailedPrecondition) as not_approved:
        await run(deps, pipeline.advance_stage,
                  AdvanceStage(pending.registration.id, "quotation"), who=DEALER_A)
    assert not_approved.value.reason == "INVALID_STATE"


async def test_notes_newest_first_and_the_next_step():
    deps, uow = await world()
    registration = await approved(deps, DEALER_A, ZHONGSHAN)
    await run(deps, pipeline.advance_stage,
              AdvanceStage(registration.id, "needs_confirmed", "科室确认需求"), who=DEALER_A)
    deps.clock.advance(hours=1)
    note = await run(deps, pipeline.add_note,
                     AddNote(registration.id, "约了主任", "带样品", "2031-01-02"), who=DEALER_A)
    assert (note.stage, note.next_step_due) == ("needs_confirmed", "2031-01-02")
    assert uow.registrations.rows[registration.id].next_step == "带样品"
    [added] = uow.published_of(REGISTRATION_NOTE_ADDED)
    assert added.next_step == "带样品"
    notes = await run(deps, pipeline.list_notes, registration.id, PageRequest(), who=DEALER_A)
    assert [n.text for n in notes.items] == ["约了主任", "科室确认需求"]
    with pytest.raises(InvalidArgument) as bad:
        await run(deps, pipeline.add_note, AddNote(registration.id, " ", "", "tomorrow"),
                  who=DEALER_A)
    assert {v.field for v in bad.value.violations} == {"text", "next_step_due"}
    with pytest.raises(NotFound):
        await run(deps, pipeline.list_notes, registration.id, PageRequest(), who=DEALER_B)


async def test_the_funnel_by_dimension_within_scope():
    deps, _ = await world()
    first = await approved(deps, DEALER_A, ZHONGSHAN)
    second = await approved(deps, DEALER_B, RUIJIN)
    await run(deps, pipeline.advance_stage, AdvanceStage(second.id, "quotation"),
              who=DEALER_B)

    async def funnel(who, group_by=FunnelDimension.WHOLE, **query):
        result = await run(deps, pipeline.funnel, FunnelQuery(group_by=group_by, **query),
                           who=who)
        assert result.stages == deps.policy.stages
        return [(g.key, g.label, [count for _, count in g.counts]) for g in result.groups]

    assert await funnel(HQ, FunnelDimension.REGION) == [("east", "east", [1, 0, 1, 0])]
    assert await funnel(HQ, FunnelDimension.PRODUCT_LINE) == [("A系列", "A系列", [1, 0, 1, 0])]
    assert await funnel(HQ) == [("", "全部", [1, 0, 1, 0])]
    by_dealer = await funnel(HQ, FunnelDimension.DEALER)
    assert by_dealer == [(A, "上海康健医疗器械有限公司", [1, 0, 0, 0]),
                         (B, "上海仁和医疗器械有限公司", [0, 0, 1, 0])]
    assert await funnel(DEALER_A, FunnelDimension.PRODUCT_LINE) == [
        ("A系列", "A系列", [1, 0, 0, 0])]
    today = deps.clock.now().date()
    assert await funnel(HQ, approved_from=(today + timedelta(days=1)).isoformat()) == []
    assert await funnel(HQ, approved_to=today.isoformat()) == [("", "全部", [1, 0, 1, 0])]
    with pytest.raises(InvalidArgument) as bad:
        await funnel(HQ, approved_from="last week")
    assert bad.value.violations[0].field == "approved_from"
    assert first.dealer_id == A
