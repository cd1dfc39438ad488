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
NOTICE_PUBLISHED = declare(
    "identity", "notice", "published", pb.NoticePublished,
    "HQ or a region published a notice (通知公告) to an audience of dealers.")
NOTICE_READ = declare(
    "identity", "notice", "read", pb.NoticeRead,
    "A dealer's user opened a notice for the first time (its read receipt).")
NOTICE_CONFIRMED = declare(
    "identity", "notice", "confirmed", pb.NoticeConfirmed,
    "A dealer's user confirmed a must-confirm notice (确认阅读).")
NOTICE_REMINDED = declare(
    "identity", "notice", "reminded", pb.NoticeReminded,
    "The dealer users who had not read or confirmed a notice are to be reminded.")
MATERIAL_PUBLISHED = declare(
    "identity", "material", "published", pb.MaterialPublished,
    "HQ or a region published a material (素材) or a new version of it.")
MATERIAL_DOWNLOADED = declare(
    "identity", "material", "downloaded", pb.MaterialDownloaded,
    "A dealer's user downloaded a version of a material.")
