"""Alembic environment: runs on the engine :class:`tradingbot.storage.db.Database` passes in
(or one built from ``sqlalchemy.url``), in one transaction, batch mode for SQLite ALTERs."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Engine

from tradingbot.storage import models  # noqa: F401 - registers the tables on the metadata
from tradingbot.storage.base import Base
from tradingbot.storage.db import create_db_engine

config = context.config


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if not isinstance(engine, Engine):
        engine = create_db_engine(config.get_main_option("sqlalchemy.url") or "")
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()
        connection.commit()


run_migrations_online()
