from __future__ import annotations

import logging

from alembic import context
from sqlalchemy import pool

from vodscribe.db.session import sql_engine
from vodscribe.db.tables import Base

#: The PostgreSQL advisory lock that serialises migrations (any fixed 64-bit number of our own).
MIGRATION_LOCK = 0x766F647363726962  # "vodscrib"

config = context.config
target_metadata = Base.metadata


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = sql_engine(url) if url.startswith("sqlite") else None
    if engine is None:
        from sqlalchemy import create_engine

        engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            # A rebuilt table is dropped and its copy renamed; with foreign keys on, dropping
            # ``videos`` would delete every row that references it (ON DELETE CASCADE). This PRAGMA
            # only takes effect outside a transaction, so before Alembic begins one.
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=sqlite,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Several API servers and workers start at once: one migrates, the others wait here
                # and then find the schema at head (released when this transaction ends).
                connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")
            context.run_migrations()
        connection.commit()
        if sqlite:
            problems = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
            connection.exec_driver_sql("PRAGMA foreign_keys=ON")  # the pooled connection goes on
            if problems:  # rows whose parent is gone: reported, not fixed (the operator decides)
                logging.getLogger("vodscribe.db").warning("rows with a broken reference: %s", problems[:20])


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
