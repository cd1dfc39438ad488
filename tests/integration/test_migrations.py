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
