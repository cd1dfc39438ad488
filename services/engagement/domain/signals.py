"""Signals: what happened, in the words SOP rules use. The consumers turn the other
services' events into signals (one event may say several things, e.g. a claimed lead
is both "lead.claimed" and the registration it created); a rule opens a task on its
trigger signal and the task closes on its closing signal about the same subject."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# Signal name → what it is about (the subject id a task is matched by) and meaning.
SIGNALS: dict[str, str] = {
    "lead.assigned": "lead: HQ or the territory assigned a pool lead to a dealer",
    "lead.claimed": "lead: the dealer claimed (contacted) the lead",
    "lead.qualified": "lead: the lead's registration moved past its first pipeline stage",
    "lead.returned": "lead: the lead went back to the pool",
    "registration.submitted": "registration: a dealer registered a customer",
    "registration.approved": "registration: the registration was approved",
    "registration.note_added": "registration: a follow-up note (visit, call) was added",
    "registration.stage_advanced": "registration: the registration moved to a later stage",
    "order.submitted": "order: a dealer submitted an order",
    "order.held": "order: an order waits for its channel manager's decision",
    "order.decided": "order: the held order was approved, rejected or cancelled",
    "statement.issued": "statement: a statement was issued to the dealer",
    "statement.confirmed": "statement: the dealer confirmed its statement",
}


@dataclass(frozen=True)
class Signal:
    name: str
    # The lead, registration, order or statement id.
    subject_id: str
    dealer_id: str
    occurred_at: datetime
    event_id: str
