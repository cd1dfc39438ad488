"""The people engagement knows from identity's events, and who is told what: a
dealer's staff, its channel managers, and the supervisors of an overdue task's
assignee (for dealer staff: the dealer's channel managers; for a channel manager: the
region managers of the dealer's region, else HQ admins)."""

from __future__ import annotations

from dataclasses import dataclass

from services.engagement.domain.sop import AssigneeRole, Task


@dataclass(frozen=True)
class Person:
    user_id: str
    display_name: str = ""
    roles: frozenset[str] = frozenset()
    org_unit_id: str = ""
    dealer_id: str = ""
    active: bool = True


@dataclass(frozen=True)
class Directory:
    """What a decision about recipients needs, looked up by the caller."""

    dealer_staff: tuple[str, ...]
    managers: tuple[str, ...]
    region_managers: tuple[str, ...]
    hq_admins: tuple[str, ...]


def supervisors_of(task: Task, directory: Directory) -> tuple[str, ...]:
    if task.assignee_role is AssigneeRole.DEALER:
        found = directory.managers
    else:
        found = directory.region_managers
    found = found or directory.hq_admins
    return tuple(user for user in found if user != task.assignee_user_id)


def assignee_of(role: AssigneeRole, directory: Directory) -> str:
    """The user a channel-manager task is for (the dealer's first manager); dealer
    tasks are for the dealer's staff as a whole ("")."""
    if role is AssigneeRole.CHANNEL_MANAGER and directory.managers:
        return directory.managers[0]
    return ""
