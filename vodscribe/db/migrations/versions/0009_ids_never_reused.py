"""Integer ids are never handed out again on SQLite (AUTOINCREMENT)

Without AUTOINCREMENT, SQLite gives a new row the largest id in use plus one, so the id of the newest
row, once deleted, went to the next row created: a client that deleted its video could find its
id (its upload, its links) pointing at another client's video. PostgreSQL's sequences never go
back, so only SQLite tables are rebuilt (Alembic's batch mode: copy, drop, rename; the copy records
the largest id in ``sqlite_sequence``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07
"""

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

#: Every table with an integer primary key that the database assigns.
TABLES = ("clients", "videos", "renditions", "subtitles", "recognitions", "webhook_attempts")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in TABLES:
        with op.batch_alter_table(table, recreate="always", table_kwargs={"sqlite_autoincrement": True}):
            pass


def downgrade() -> None:
    pass  # AUTOINCREMENT is harmless to keep
