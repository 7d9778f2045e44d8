"""videos.auto_ai_requested (AI subtitles requested once), videos.asr_source (the origin kept for ASR)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.add_column(
            sa.Column("auto_ai_requested", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("asr_source", sa.String(length=128), nullable=True))
        batch.create_index("ix_videos_asr_source", ["asr_source"])


def downgrade() -> None:
    with op.batch_alter_table("videos") as batch:
        batch.drop_index("ix_videos_asr_source")
        batch.drop_column("asr_source")
        batch.drop_column("auto_ai_requested")
