"""Storage: SQLAlchemy models and Alembic migrations. The only package importing SQLAlchemy."""
