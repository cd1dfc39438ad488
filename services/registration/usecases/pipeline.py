"""The sales pipeline of an approved registration: moving it to a later stage shows
the dealer is working the customer and renews the protection; notes record each step;
the funnel counts registrations per stage for the managers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from qudao.registration.v1 import events_pb2
from qudao.registration.v1 import registration_pb2 as pb
from sqlalchemy import func, literal_column, select, update

from services.registration.adapters.orm import DealerRow, NoteRow, RegistrationRow
from services.registration.domain.rules import Status, parse_day
from services.registration.usecases.common import (
    PIPELINE,
    _new_id,
    _now,
    _set_ts,
    page_args,
    registration_to_proto,
)
from services.registration.usecases.registrations import RegistrationUseCases
from shared.context import current_principal
from shared.errors import (
    FailedPrecondition,
    FieldViolation,
    InvalidArgument,
    PermissionDenied,
    collect,
)
from shared.events.registration import REGISTRATION_NOTE_ADDED, REGISTRATION_STAGE_ADVANCED
from shared.pagination import decode_page_token


def note_to_proto(row: NoteRow) -> pb.Note:
    note = pb.Note(id=row.id, registration_id=row.registration_id, text=row.text,
                   stage=row.stage, next_step=row.next_step, next_step_due=row.next_step_due,
                   created_by=row.created_by)
    _set_ts(note.created_at, row.created_at)
    return note


class PipelineUseCases(RegistrationUseCases):
    async def advance_stage(self, request: pb.AdvanceStageRequest) -> pb.Registration:
        target = request.stage.strip()
        if self.policy.stage_index(target) < 0:
            raise InvalidArgument.field("stage", f"{target!r} is not a stage; stages are "
                                                 f"{', '.join(self.policy.stages)}")
        principal = current_principal()
        async with self.db.write() as session:
            row = await self._load_registration(session, request.registration_id,
                                                "registration.submit")
            if not principal.has_role(*PIPELINE):
                raise PermissionDenied("the pipeline is worked by the dealer and its managers")
            if row.status != Status.APPROVED:
                raise FailedPrecondition(f"registration {row.id} is {row.status}; only "
                                         "approved registrations move along the pipeline",
                                         reason="INVALID_STATE")
            current = self.policy.stage_index(row.stage)
            if self.policy.stage_index(target) <= current:
                raise InvalidArgument.field("stage", f"{target} is not after the current stage "
                                                     f"{row.stage}")
            previous_stage = row.stage
            result = await session.execute(
                update(RegistrationRow).where(RegistrationRow.id == row.id,
                                              RegistrationRow.stage == previous_stage)
                .values(stage=target, next_step=request.next_step.strip() or row.next_step,
                        updated_at=_now()))
            if result.rowcount != 1:
                raise FailedPrecondition("the stage changed meanwhile",
                                         reason="CONCURRENT_CHANGE")
            await session.refresh(row)
            if request.note.strip() or request.next_step.strip():
                session.add(NoteRow(id=_new_id(), registration_id=row.id,
                                    text=request.note.strip() or f"→ {target}", stage=target,
                                    next_step=request.next_step.strip(), created_at=_now(),
                                    created_by=principal.subject))
            await self._event(session, REGISTRATION_STAGE_ADVANCED,
                              events_pb2.RegistrationStageAdvanced(
                                  registration=registration_to_proto(row),
                                  previous_stage=previous_stage), row.id)
            await self._renew(session, row, f"pipeline moved to {target}")
        return registration_to_proto(row, await self._scope("registration.read"))

    async def add_note(self, request: pb.AddNoteRequest) -> pb.Note:
        violations = []
        if not request.text.strip():
            violations.append(FieldViolation("text", "is required"))
        parse_day(request.next_step_due, "next_step_due", violations)
        collect(violations)
        async with self.db.write() as session:
            row = await self._load_registration(session, request.registration_id,
                                                "registration.submit")
            if not current_principal().has_role(*PIPELINE):
                raise PermissionDenied("the pipeline is worked by the dealer and its managers")
            note = NoteRow(id=_new_id(), registration_id=row.id, text=request.text.strip(),
                           stage=row.stage, next_step=request.next_step.strip(),
                           next_step_due=request.next_step_due, created_at=_now(),
                           created_by=current_principal().subject)
            session.add(note)
            if request.next_step.strip():
                row.next_step = request.next_step.strip()
                row.updated_at = _now()
            await session.flush()
            await self._event(session, REGISTRATION_NOTE_ADDED,
                              events_pb2.RegistrationNoteAdded(note=note_to_proto(note),
                                                               next_step=row.next_step), row.id)
        return note_to_proto(note)

    async def list_notes(self, request: pb.ListNotesRequest):
        size, token = page_args(request.page)
        async with self.db.read() as session:
            await self._load_registration(session, request.registration_id,
                                          "registration.read")
        query = (select(NoteRow).where(NoteRow.registration_id == request.registration_id)
                 .order_by(NoteRow.created_at.desc(), NoteRow.id))
        return await self._page(query, decode_page_token(token), size, note_to_proto)

    async def funnel(self, request: pb.GetFunnelRequest) -> pb.GetFunnelResponse:
        scope = await self._scope("registration.read")
        violations: list[FieldViolation] = []
        start = parse_day(request.approved_from, "approved_from", violations)
        end = parse_day(request.approved_to, "approved_to", violations)
        collect(violations)
        column = {pb.FUNNEL_DIMENSION_REGION: RegistrationRow.region_code,
                  pb.FUNNEL_DIMENSION_DEALER: RegistrationRow.dealer_id,
                  pb.FUNNEL_DIMENSION_PRODUCT_LINE: RegistrationRow.product_line}.get(
            request.group_by)
        if column is None:  # one group: the whole scope
            query = (select(literal_column("''").label("key"), RegistrationRow.stage,
                            func.count()).group_by(RegistrationRow.stage))
        else:
            query = (select(column.label("key"), RegistrationRow.stage, func.count())
                     .group_by(column, RegistrationRow.stage))
        query = query.where(RegistrationRow.status == Status.APPROVED)
        if not scope.all_dealers:
            query = query.where(RegistrationRow.dealer_id.in_(scope.dealer_ids))
        if request.dealer_id:
            query = query.where(RegistrationRow.dealer_id == request.dealer_id)
        if request.region_code:
            query = query.where(RegistrationRow.region_code == request.region_code)
        if request.product_line:
            query = query.where(RegistrationRow.product_line == request.product_line)
        if start:
            query = query.where(RegistrationRow.approved_at >= datetime.combine(
                start, datetime.min.time(), UTC))
        if end:
            query = query.where(RegistrationRow.approved_at < datetime.combine(
                end + timedelta(days=1), datetime.min.time(), UTC))
        async with self.db.read() as session:
            rows = (await session.execute(query)).all()
            names = {}
            if request.group_by == pb.FUNNEL_DIMENSION_DEALER:
                names = dict((await session.execute(select(DealerRow.id, DealerRow.name))).all())
        groups: dict[str, dict[str, int]] = {}
        for group_key, stage, count in rows:
            groups.setdefault(group_key or "", {})[stage] = count
        response = pb.GetFunnelResponse(stages=list(self.policy.stages))
        for group_key in sorted(groups):
            counts = groups[group_key]
            response.groups.append(pb.FunnelGroup(
                key=group_key, label=names.get(group_key, group_key or "全部"),
                stages=[pb.FunnelStageCount(stage=s, count=counts.get(s, 0))
                        for s in self.policy.stages]))
        return response
