"""Database fixtures: every storage and sync test runs on SQLite and on real PostgreSQL.

PostgreSQL is the server at ``TRADINGBOT_TEST_PG_URL`` (default: trust auth on
127.0.0.1:5432, database ``test``). Each test gets a freshly created schema, selected through
``search_path``, and dropped afterwards, so tests never see each other's rows and the
migrations always run from an empty database. An unreachable server fails the test: CI has
one, and a silently skipped backend would prove nothing.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tradingbot.storage.db import Database

PG_URL = os.environ.get(
    "TRADINGBOT_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
BACKENDS = ["sqlite", "postgresql"]


@pytest.fixture(params=BACKENDS)
def db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A URL to an empty database of each backend."""
    if request.param == "sqlite":
        folder = tmp_path_factory.mktemp("db")
        yield f"sqlite:///{folder / 'nested' / 'tradingbot.db'}"
        return
    schema = f"tb_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = make_url(PG_URL).update_query_dict({"options": f"-csearch_path={schema}"})
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    """A migrated database on each backend."""
    database = Database(db_url)
    try:
        yield database
    finally:
        database.close()
