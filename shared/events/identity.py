"""Events published by identity (payloads in protos/qudao/identity/v1/events.proto)."""

from __future__ import annotations

from qudao.identity.v1 import events_pb2 as pb

from shared.events.catalog import declare

ORG_UNIT_CREATED = declare(
    "identity", "org_unit", "created", pb.OrgUnitCreated,
    "A region, dealer or other org unit was created (registration and flow project dealers "
    "from it).")
USER_CREATED = declare(
    "identity", "user", "created", pb.UserCreated,
    "A user account was created.")
USER_DEACTIVATED = declare(
    "identity", "user", "deactivated", pb.UserDeactivated,
    "A user left; their sessions end at once and their dealers may pass to a successor.")
ORG_UNIT_UPDATED = declare(
    "identity", "org_unit", "updated", pb.OrgUnitUpdated,
    "An org unit changed: territory, tier, parent platform dealer, product lines or status.")
USER_ROLES_CHANGED = declare(
    "identity", "user_roles", "changed", pb.UserRolesChanged,
    "A user's roles or org unit changed; cached scopes of that user are stale.")
TAGS_CHANGED = declare(
    "identity", "dealer_tags", "changed", pb.TagsChanged,
    "A dealer's derived or custom tags changed (audiences may now include or exclude it).")
ASSIGNMENT_CHANGED = declare(
    "identity", "assignment", "changed", pb.AssignmentChanged,
    "Channel managers were assigned to, unassigned from or handed over dealers.")
USER_PASSWORD_CHANGED = declare(
    "identity", "user_password", "changed", pb.UserPasswordChanged,
    "A user's password changed; their other sessions are revoked.")
SESSION_REVOKED = declare(
    "identity", "session", "revoked", pb.SessionRevoked,
    "Access tokens every process refuses until they expire: one signed-out token, or a "
    "user's tokens issued before a moment.")
USER_LOGGED_IN = declare(
    "identity", "user", "logged_in", pb.UserLoggedIn,
    "A user signed in (engagement keeps each dealer's last login).")
