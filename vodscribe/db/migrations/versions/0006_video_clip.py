"""videos.clip_start_seconds, videos.clip_duration_seconds (only that segment is processed)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(sa.Column("clip_start_seconds", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("clip_duration_seconds", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_column("clip_duration_seconds")
        batch.drop_column("clip_start_seconds")
