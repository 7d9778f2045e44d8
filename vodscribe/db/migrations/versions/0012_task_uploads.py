"""ai_tasks.upload (the media a speech request uploaded, kept in the media store while its task may
need it) and ai_tasks.partial (the segments recognised so far, for a request that streams them)

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ai_tasks") as batch:
        batch.add_column(sa.Column("upload", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("partial", sa.JSON(), nullable=True))
        batch.create_index("ix_ai_tasks_upload", ["upload"])


def downgrade() -> None:
    with op.batch_alter_table("ai_tasks") as batch:
        batch.drop_index("ix_ai_tasks_upload")
        batch.drop_column("partial")
        batch.drop_column("upload")
