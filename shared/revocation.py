"""Session revocation and scope-cache invalidation from identity's events, in every
process (services and gateway).

Identity publishes ``UserDeactivated`` and ``SessionRevoked`` (a logout, or every token
of a user issued before a password or role change), and every other scope-changing
event, through its outbox into its stream. Every process follows that stream with an
ephemeral pull consumer of its own (no acks, memory storage): at start from the events of
the last day (longer than any access token lives), so a process that was down when a
user left still refuses that user's tokens; after a disconnect, a broken pull or a lost
consumer, from the stream sequence after the last one it applied. Nothing published
while the connection was down is missed: it is replayed from the stream.

    revocations = RevocationList()
    watcher = IdentityEvents(nc, revocations, on_scope_change=[resolver.invalidate])
    await watcher.start()            # then pass revocations.is_revoked to the interceptor

``watcher.caught_up`` is set once everything in the stream at start has been applied.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from nats.aio.client import Client as NatsClient
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError
from prometheus_client import Gauge
from qudao.identity.v1 import events_pb2

from shared.bus.envelope import UndecodableEvent, decode_envelope, stream_name
from shared.bus.pull import PullLoop
from shared.events.identity import (
    ASSIGNMENT_CHANGED,
    ORG_UNIT_CREATED,
    ORG_UNIT_UPDATED,
    SESSION_REVOKED,
    USER_DEACTIVATED,
    USER_ROLES_CHANGED,
)
from shared.logging import get_logger

log = get_logger(__name__)

IDENTITY_SUBJECTS = "qudao.identity.>"
REVOKING = (USER_DEACTIVATED, SESSION_REVOKED)
DEACTIVATED_SUBJECT = USER_DEACTIVATED.subject
SESSION_REVOKED_SUBJECT = SESSION_REVOKED.subject
# Events after which a cached ResolveScope answer may be wrong.
SCOPE_CHANGES = (ORG_UNIT_CREATED, ORG_UNIT_UPDATED, USER_DEACTIVATED, USER_ROLES_CHANGED,
                 ASSIGNMENT_CHANGED)
SCOPE_SUBJECT_PREFIXES = tuple(event.subject for event in SCOPE_CHANGES)
# Longer than any access token lives (identity's default TTL is 15 minutes).
DEFAULT_MEMORY_SECONDS = 24 * 3600.0
IDENTITY_STREAM = stream_name("identity")
# The server forgets a follower's consumer this long after its process stopped pulling.
FOLLOWER_INACTIVE_SECONDS = 60.0

FOLLOWER_SEQUENCE = Gauge(
    "qudao_identity_events_applied_sequence",
    "Last sequence of identity's stream applied to this process's revocations and caches",
)


class RevocationList:
    """User ids whose sessions are all revoked (deactivation), single token ids (logout),
    and per user a moment before which its tokens were issued in vain (password or role
    change); each remembered long enough to outlive every token issued before."""

    def __init__(self, memory_seconds: float = DEFAULT_MEMORY_SECONDS) -> None:
        self.memory_seconds = memory_seconds
        self._until: dict[str, float] = {}
        self._tokens: dict[str, float] = {}
        # user id → (issued-before moment, epoch seconds; remembered until, monotonic)
        self._issued_before: dict[str, tuple[float, float]] = {}

    def revoke(self, user_id: str) -> None:
        if user_id:
            self._until[user_id] = time.monotonic() + self.memory_seconds

    def revoke_token(self, token_id: str) -> None:
        if token_id:
            self._tokens[token_id] = time.monotonic() + self.memory_seconds

    def revoke_issued_before(self, user_id: str, moment: float) -> None:
        if user_id:
            previous = self._issued_before.get(user_id, (0.0, 0.0))[0]
            self._issued_before[user_id] = (max(previous, moment),
                                            time.monotonic() + self.memory_seconds)

    def _issued_too_early(self, principal) -> bool:
        entry = self._issued_before.get(getattr(principal, "user_id", "") or "")
        if entry is None:
            return False
        moment, until = entry
        if until < time.monotonic():
            del self._issued_before[principal.user_id]
            return False
        return getattr(principal, "issued_at", 0.0) < moment

    @staticmethod
    def _held(table: dict[str, float], key: str) -> bool:
        until = table.get(key) if key else None
        if until is None:
            return False
        if until < time.monotonic():
            del table[key]
            return False
        return True

    def is_revoked(self, principal) -> bool:
        return (self._held(self._until, getattr(principal, "user_id", ""))
                or self._held(self._tokens, getattr(principal, "token_id", ""))
                or self._issued_too_early(principal))

    def __contains__(self, user_id: str) -> bool:
        return user_id in self._until

    def __len__(self) -> int:
        return len(self._until)


class IdentityEvents:
    """Follows identity's stream: revokes sessions of deactivated users and calls
    ``on_scope_change`` (e.g. ``ScopeResolver.invalidate``) after any scope change."""

    def __init__(self, nc: NatsClient, revocations: RevocationList | None = None,
                 on_scope_change: Iterable[Callable[[], object]] = (),
                 catch_up_seconds: float = DEFAULT_MEMORY_SECONDS,
                 change_prefixes: tuple[str, ...] = SCOPE_SUBJECT_PREFIXES,
                 *, heartbeat: float = 1.0) -> None:
        self.nc = nc
        self.revocations = revocations
        self.on_scope_change = list(on_scope_change)
        # Which subjects call on_scope_change (identity itself also wants tag changes).
        self.change_prefixes = change_prefixes
        self.catch_up_seconds = catch_up_seconds
        self.heartbeat = heartbeat
        self.caught_up = asyncio.Event()
        self.last_sequence = 0
        self.resumes = 0
        self._task: asyncio.Task | None = None

    @property
    def subjects(self) -> list[str]:
        if self.change_prefixes == ("qudao.identity.",):
            return [IDENTITY_SUBJECTS]
        # Exact subjects named as change prefixes are followed too.
        wanted = {event.subject for event in (*REVOKING, *SCOPE_CHANGES)}
        return sorted(wanted | set(self.change_prefixes))

    async def start(self, wait: float = 5.0) -> None:
        """Start following; wait up to ``wait`` seconds for the catch-up (the caller's
        readiness can watch ``caught_up`` for the rest)."""
        self._task = asyncio.create_task(self._run(), name="identity-events")
        if wait <= 0:
            return
        try:
            await asyncio.wait_for(self.caught_up.wait(), wait)
        except TimeoutError:
            log.warning("identity_events_catching_up", waited_seconds=wait)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._task, 5)
            self._task = None

    async def _run(self) -> None:
        backoff = 0.1
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # disconnected, stalled, consumer gone: resume
                log.info("identity_events_resuming", after_sequence=self.last_sequence,
                         error=repr(exc))
                self.resumes += 1
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 2.0)
            else:
                backoff = 0.1

    def _config(self) -> ConsumerConfig:
        if self.last_sequence:
            start = {"deliver_policy": DeliverPolicy.BY_START_SEQUENCE,
                     "opt_start_seq": self.last_sequence + 1}
        else:
            since = datetime.now(UTC) - timedelta(seconds=self.catch_up_seconds)
            start = {"deliver_policy": DeliverPolicy.BY_START_TIME,
                     "opt_start_time": since.isoformat().replace("+00:00", "Z")}
        return ConsumerConfig(
            name=f"follow-{uuid.uuid4().hex[:16]}", ack_policy=AckPolicy.NONE,
            filter_subjects=self.subjects,
            inactive_threshold=FOLLOWER_INACTIVE_SECONDS, mem_storage=True, num_replicas=1,
            **start)

    async def _follow(self) -> None:
        js = self.nc.jetstream()
        config = self._config()
        try:
            info = await js.add_consumer(IDENTITY_STREAM, config)
        except NotFoundError:
            # Identity has not created its stream yet: there is nothing to replay, and
            # the follower starts at the stream's first event once it exists.
            self.caught_up.set()
            await asyncio.sleep(1.0)
            raise
        if not info.num_pending:
            self.caught_up.set()
        pull = PullLoop(self.nc, IDENTITY_STREAM, config.name, batch=256,
                        expires=max(5.0, self.heartbeat * 5), heartbeat=self.heartbeat)
        await pull.start()
        try:
            while True:
                for message in await pull.next_batch():
                    self.last_sequence = message.metadata.sequence.stream
                    self._apply(message.subject, message.data)
                    if not message.metadata.num_pending:
                        self.caught_up.set()
                FOLLOWER_SEQUENCE.set(self.last_sequence)
        finally:
            with contextlib.suppress(Exception):
                await pull.close()

    @staticmethod
    def apply_revocation(revocations: RevocationList, payload) -> None:
        """A UserDeactivated or SessionRevoked event, applied to ``revocations``."""
        if isinstance(payload, events_pb2.UserDeactivated):
            revocations.revoke(payload.user.id)
        elif payload.token_id:
            revocations.revoke_token(payload.token_id)
        elif payload.HasField("issued_before"):
            revocations.revoke_issued_before(
                payload.user_id, payload.issued_before.ToNanoseconds() / 1e9)

    def _apply(self, subject: str, data: bytes) -> None:
        if subject in (DEACTIVATED_SUBJECT, SESSION_REVOKED_SUBJECT) and \
                self.revocations is not None:
            try:
                event = decode_envelope(subject, data)
            except UndecodableEvent as exc:
                log.warning("identity_event_undecodable", subject=subject, error=str(exc))
            else:
                self.apply_revocation(self.revocations, event.payload)
        if subject.startswith(self.change_prefixes):
            for callback in self.on_scope_change:
                try:
                    callback()
                except Exception:
                    log.exception("scope_invalidation_failed")
