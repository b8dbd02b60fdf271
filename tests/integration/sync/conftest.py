from tests.mocks.databases import db, db_url

__all__ = ["db", "db_url"]
