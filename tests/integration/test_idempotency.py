"""The kept answers of creating calls (shared/idempotency.py) on a real SQLite database:
the first answer comes back for its key, another request under the key is refused
naming the header, a failed call lets go of its key, old keys are forgotten."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from qudao.registration.v1 import registration_pb2 as pb
from sqlalchemy import MetaData, update

from shared.db import Database
from shared.errors import FailedPrecondition, InvalidArgument
from shared.idempotency import KEEP_DAYS, ClientRequests, idempotency_table

METHOD = "/qudao.registration.v1.RegistrationService/CreateLead"


@pytest.fixture
async def requests(tmp_path):
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'keys.db'}")
    metadata = MetaData()
    table = idempotency_table(metadata)
    async with db.engine.begin() as connection:
        await connection.run_sync(metadata.create_all)
    yield ClientRequests(db, table)
    await db.dispose()


def lead_request(name: str) -> pb.CreateLeadRequest:
    return pb.CreateLeadRequest(customer_name=name, product_line="A系列")


async def test_a_key_answers_its_first_request_and_refuses_another(requests):
    created = []

    async def create(name):
        created.append(name)
        return pb.CreateLeadResponse(lead=pb.Lead(id=f"lead-{len(created)}", customer_name=name))

    first = await requests.once(METHOD, "k1", lead_request("甲医院"),
                                lambda: create("甲医院"))
    again = await requests.once(METHOD, "k1", lead_request("甲医院"),
                                lambda: create("甲医院"))
    assert again == first and created == ["甲医院"]
    with pytest.raises(FailedPrecondition) as refused:
        await requests.once(METHOD, "k1", lead_request("乙医院"), lambda: create("乙医院"))
    assert refused.value.violations[0].field == "Idempotency-Key"
    other = await requests.once(METHOD, "k2", lead_request("乙医院"), lambda: create("乙医院"))
    assert other.lead.id == "lead-2"


async def test_a_failed_call_lets_go_of_its_key(requests):
    async def refuse():
        raise InvalidArgument.field("customer_name", "is required")

    async def create():
        return pb.CreateLeadResponse(lead=pb.Lead(id="lead-1"))

    with pytest.raises(InvalidArgument):
        await requests.once(METHOD, "k", lead_request(""), refuse)
    answer = await requests.once(METHOD, "k", lead_request(""), create)
    assert answer.lead.id == "lead-1"


async def test_keys_older_than_the_retention_are_forgotten(requests):
    async def create():
        return pb.CreateLeadResponse(lead=pb.Lead(id="lead-1"))

    await requests.once(METHOD, "old", lead_request("甲"), create)
    async with requests.db.write() as session:
        await session.execute(update(requests.table).values(
            created_at=datetime.now(UTC) - timedelta(days=KEEP_DAYS + 1)))
    await requests.once(METHOD, "new", lead_request("甲"), create)
    assert await requests.prune() == {"forgotten": 1}
