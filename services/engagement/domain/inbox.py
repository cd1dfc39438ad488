"""Inbox items: one per recipient and event, read or unread. An item is keyed by the
event and the recipient, so a redelivered event adds nothing."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime


@dataclass(frozen=True)
class Notice:
    """What to tell, before it is addressed to anyone."""

    kind: str
    title: str
    body: str
    ref_type: str
    ref_id: str
    dealer_id: str = ""


@dataclass(frozen=True)
class InboxItem:
    id: str
    user_id: str
    kind: str
    title: str
    body: str
    ref_type: str
    ref_id: str
    dealer_id: str
    source_key: str
    created_at: datetime
    read_at: datetime | None = None

    @property
    def read(self) -> bool:
        return self.read_at is not None

    def marked_read(self, at: datetime) -> InboxItem:
        return self if self.read else replace(self, read_at=at)
