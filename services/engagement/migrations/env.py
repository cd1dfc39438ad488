from services.engagement.adapters.orm import Base
from shared.migrations import run_migrations

run_migrations(Base.metadata)
