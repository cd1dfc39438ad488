"""Every service's migrations build exactly the schema its adapters declare, so a table
or column added to the code without a migration (or the reverse) fails here."""

from __future__ import annotations

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from shared.db import migrate
from shared.settings import SERVICES
from suite.services import bootstrap_of


@pytest.mark.parametrize("service", SERVICES)
def test_migrations_match_the_declared_tables(tmp_path, service):
    migrate(bootstrap_of(service).MIGRATIONS, f"sqlite+aiosqlite:///{tmp_path}/db.sqlite")
    metadata = importlib.import_module(f"services.{service}.adapters.orm").Base.metadata
    engine = create_engine(f"sqlite:///{tmp_path}/db.sqlite")
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, metadata) == []
    engine.dispose()


def test_registration_backfills_the_address_key_of_known_customers(tmp_path):
    """Customers stored before address evidence existed get their address key."""
    from services.registration.bootstrap import MIGRATIONS

    url = f"sqlite+aiosqlite:///{tmp_path}/registration.sqlite"
    migrate(MIGRATIONS, url, "0002")
    engine = create_engine(f"sqlite:///{tmp_path}/registration.sqlite")
    with engine.begin() as connection:
        for number, (address, division) in enumerate((("上海市徐汇区枫林路180号", "310104"),
                                                      ("上海市徐汇区", "310104"))):
            connection.exec_driver_sql(
                "INSERT INTO customers (id, name, normalized_name, aliases, address, "
                "division_code, division_overridden, city_code, customer_type, grade, "
                "departments, created_at, updated_at, created_by) VALUES (?, ?, ?, '[]', ?, "
                "?, 0, '310100', 1, '', '[]', '2026-01-01', '2026-01-01', 'x')",
                (f"c{number}", f"医院{number}", f"医院{number}", address, division))
    migrate(MIGRATIONS, url)
    with engine.connect() as connection:
        keys = dict(connection.exec_driver_sql(
            "SELECT id, address_key FROM customers ORDER BY id").all())
    engine.dispose()
    assert keys == {"c0": "310104|枫林路180", "c1": ""}
