"""Alembic environment and revisions for framehook's schema (run via ``receiver.db.schema``)."""
