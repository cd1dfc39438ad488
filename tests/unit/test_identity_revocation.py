"""shared.revocation: the revoked-user list and how identity events feed it. No I/O."""

from __future__ import annotations

from qudao.identity.v1 import events_pb2, identity_pb2

from shared.bus.envelope import build_envelope
from shared.context import Principal
from shared.revocation import IdentityEvents, RevocationList


def test_a_revoked_user_is_remembered_then_forgotten():
    revocations = RevocationList(memory_seconds=60)
    alice = Principal(subject="user:a", user_id="a")
    assert not revocations.is_revoked(alice)
    revocations.revoke("a")
    assert revocations.is_revoked(alice) and "a" in revocations
    assert not revocations.is_revoked(Principal(subject="service:erp"))
    expired = RevocationList(memory_seconds=-1)
    expired.revoke("a")
    assert not expired.is_revoked(alice) and len(expired) == 0


def test_a_signed_out_token_alone_is_revoked():
    revocations = RevocationList()
    revocations.revoke_token("jti-1")
    assert revocations.is_revoked(Principal(subject="user:a", user_id="a", token_id="jti-1"))
    assert not revocations.is_revoked(Principal(subject="user:a", user_id="a",
                                                token_id="jti-2"))


def envelope(payload) -> bytes:
    return build_envelope("identity", payload, "x").SerializeToString()


def test_events_revoke_and_invalidate():
    revocations = RevocationList()
    cleared = []
    watcher = IdentityEvents(nc=None, revocations=revocations,
                             on_scope_change=[lambda: cleared.append(1)])
    deactivated = events_pb2.UserDeactivated(user=identity_pb2.User(id="u1"))
    watcher._apply("qudao.identity.user.deactivated", envelope(deactivated))
    assert "u1" in revocations and len(cleared) == 1
    watcher._apply("qudao.identity.assignment.changed",
                   envelope(events_pb2.AssignmentChanged()))
    watcher._apply("qudao.identity.org_unit.updated", envelope(events_pb2.OrgUnitUpdated()))
    assert len(cleared) == 3
    # Not scope-changing: a new user, a tag change. Garbage is logged, not raised.
    watcher._apply("qudao.identity.user.created", envelope(events_pb2.UserCreated()))
    watcher._apply("qudao.identity.dealer_tags.changed", envelope(events_pb2.TagsChanged()))
    watcher._apply("qudao.identity.session.revoked",
                   envelope(events_pb2.SessionRevoked(user_id="u2", token_id="t9")))
    assert revocations.is_revoked(Principal(subject="user:u2", user_id="u2", token_id="t9"))
    watcher._apply("qudao.identity.user.deactivated", b"\xff\x00garbage")
    assert len(cleared) == 4 and len(revocations) == 1


def test_tokens_issued_before_a_password_or_role_change_are_refused_later_ones_kept():
    revocations = RevocationList()
    watcher = IdentityEvents(nc=None, revocations=revocations)
    event = events_pb2.SessionRevoked(user_id="u3", reason="roles_changed")
    event.issued_before.FromNanoseconds(1_700_000_000_500_000_000)  # …000.5 s
    watcher._apply("qudao.identity.session.revoked", envelope(event))
    old = Principal(subject="user:u3", user_id="u3", issued_at=1_700_000_000.499)
    refreshed = Principal(subject="user:u3", user_id="u3", issued_at=1_700_000_000.501)
    assert revocations.is_revoked(old) and not revocations.is_revoked(refreshed)
    assert not revocations.is_revoked(Principal(subject="user:u4", user_id="u4",
                                                issued_at=1_600_000_000))
    # An earlier moment arriving late (replayed on start) does not undo a later one.
    revocations.revoke_issued_before("u3", 1_600_000_000)
    assert revocations.is_revoked(old)


def test_identity_follows_its_org_changes_but_not_what_dealers_do_with_notices():
    """Identity's own replicas clear their scope cache on org, user, tag and assignment
    changes; a notice read or a material download (frequent, changing no scope or
    audience) clears nothing and is not even followed."""
    from services.identity.bootstrap import ORG_CHANGES

    cleared = []
    watcher = IdentityEvents(nc=None, revocations=RevocationList(),
                             on_scope_change=[lambda: cleared.append(1)],
                             change_prefixes=ORG_CHANGES)
    assert "qudao.identity.dealer_tags.changed" in watcher.subjects
    assert "qudao.identity.user.deactivated" in watcher.subjects
    assert not [s for s in watcher.subjects if ".notice." in s or ".material." in s]
    # Nor a login (every sign-in publishes one, for engagement's dealer health).
    assert "qudao.identity.user.logged_in" not in watcher.subjects
    watcher._apply("qudao.identity.dealer_tags.changed", envelope(events_pb2.TagsChanged()))
    watcher._apply("qudao.identity.notice.read", envelope(events_pb2.NoticeRead()))
    assert len(cleared) == 1
