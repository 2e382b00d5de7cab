"""Alembic environment: always driven by ``receiver.db.schema``, which hands over a connection."""

from alembic import context

from receiver.db.models import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - guarded by receiver.db.schema
    raise RuntimeError("run migrations with `framehook db upgrade`, not the alembic CLI")

context.configure(
    connection=connection,
    target_metadata=metadata,
    # SQLite can't ALTER most things; batch mode rebuilds tables for it.
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
