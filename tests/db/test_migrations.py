from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from ivr.db.base import Base
from ivr.db.migrate import current


def test_migrations_match_the_models(any_db):
    """`ivr db upgrade` builds exactly the schema the models describe (no forgotten migration)."""
    assert current(any_db.engine) is not None
    with any_db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == []
