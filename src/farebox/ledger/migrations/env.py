"""Alembic environment: farebox always hands it an open connection (see `farebox.ledger.engine.migrate`)."""

from alembic import context

from farebox.ledger.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
