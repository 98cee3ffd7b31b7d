"""The migrations make exactly the tables the models describe, on both databases."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from engage import db


def test_migrated_schema_matches_the_models(app):
    with app.app_context(), db.engine().connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": False, "render_as_batch": True}
        )
        differences = compare_metadata(context, db.Base.metadata)
    assert differences == []
