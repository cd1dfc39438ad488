"""Idempotency-Key for creating calls: the first answer to a caller's key is kept in the
service's own database (table ``client_requests``), so a retry through any gateway
replica gets that answer back instead of creating again; the same key with another
request is refused, naming the header.

A call claims its key before it runs (a row without an answer) and stores the answer
after; a second call while the first runs is told to retry. A claim whose call died
between its commit and storing the answer is taken over after ``CLAIM_SECONDS``: that
narrow window is where a retry could still create twice."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from google.protobuf import descriptor_pool, message_factory
from sqlalchemy import Column, DateTime, LargeBinary, MetaData, String, Table, delete, select
from sqlalchemy.exc import IntegrityError

from shared.context import current_principal
from shared.db import Database
from shared.errors import Conflict, FailedPrecondition, FieldViolation

CLAIM_SECONDS = 120
# How long a key answers its first request: far beyond any client's retries.
KEEP_DAYS = 7
PRUNE_SECONDS = 3600.0
HEADER = "Idempotency-Key"


def idempotency_table(metadata: MetaData) -> Table:
    """Add the ``client_requests`` table to a service's metadata."""
    return Table(
        "client_requests",
        metadata,
        # sha256 of who called, which method and the key: keys are the caller's own.
        Column("key_hash", String(64), primary_key=True),
        Column("request_hash", String(64), nullable=False),
        Column("response", LargeBinary, nullable=True),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )


def _digest(*parts: bytes) -> str:
    hashed = hashlib.sha256()
    for part in parts:
        hashed.update(len(part).to_bytes(8, "big") + part)
    return hashed.hexdigest()


def _response_class(method: str):
    service, _, name = method.lstrip("/").rpartition("/")
    output = descriptor_pool.Default().FindServiceByName(service).FindMethodByName(name)
    return message_factory.GetMessageClass(output.output_type)


class ClientRequests:
    """The kept answers of one service's creating calls."""

    def __init__(self, db: Database, table: Table) -> None:
        self.db = db
        self.table = table

    async def once(self, method: str, key: str, request, run):
        """The answer ``run()`` gives ``request``, or the one it gave the first time the
        caller sent ``key`` to ``method``."""
        key_hash = _digest(current_principal().subject.encode(), method.encode(),
                           key.encode())
        request_hash = _digest(request.SerializeToString(deterministic=True))
        kept = await self._claim(key_hash, request_hash)
        if kept is not None:
            return _response_class(method).FromString(kept)
        try:
            response = await run()
        except BaseException:
            async with self.db.write() as session:
                await session.execute(delete(self.table).where(
                    self.table.c.key_hash == key_hash))
            raise
        async with self.db.write() as session:
            await session.execute(self.table.update().where(
                self.table.c.key_hash == key_hash).values(
                response=response.SerializeToString()))
        return response

    async def prune(self) -> dict:
        """Forget keys older than ``KEEP_DAYS``."""
        before = datetime.now(UTC) - timedelta(days=KEEP_DAYS)
        async with self.db.write() as session:
            result = await session.execute(delete(self.table).where(
                self.table.c.created_at < before))
        return {"forgotten": result.rowcount}

    async def _claim(self, key_hash: str, request_hash: str) -> bytes | None:
        """None when this call claimed the key and runs; the kept answer otherwise."""
        now = datetime.now(UTC)
        for _ in range(2):
            try:
                async with self.db.write() as session:
                    await session.execute(self.table.insert().values(
                        key_hash=key_hash, request_hash=request_hash, created_at=now))
                return None
            except IntegrityError:
                pass
            async with self.db.read() as session:
                row = (await session.execute(select(self.table).where(
                    self.table.c.key_hash == key_hash))).first()
            if row is None:
                continue  # the first call failed and let go of the key meanwhile
            if row.request_hash != request_hash:
                raise FailedPrecondition(
                    f"{HEADER} was already used for a different request; use a new key "
                    "for a new creation", reason="IDEMPOTENCY_KEY_REUSED",
                    violations=[FieldViolation(HEADER, "was used for a different request")])
            if row.response is not None:
                return row.response
            created = row.created_at if row.created_at.tzinfo else row.created_at.replace(
                tzinfo=UTC)
            if now - created < timedelta(seconds=CLAIM_SECONDS):
                raise Conflict(f"the first request with this {HEADER} is still being "
                               "processed; retry shortly", reason="IDEMPOTENT_IN_PROGRESS")
            async with self.db.write() as session:
                await session.execute(delete(self.table).where(
                    self.table.c.key_hash == key_hash, self.table.c.response.is_(None)))
        raise Conflict(f"the first request with this {HEADER} is still being processed; "
                       "retry shortly", reason="IDEMPOTENT_IN_PROGRESS")
