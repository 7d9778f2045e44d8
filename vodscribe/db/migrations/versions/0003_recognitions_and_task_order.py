"""recognitions (recognise a file once), ai_tasks.after_task_id (a video's translations wait)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recognitions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("media_sha256", sa.String(length=64), nullable=False),
        sa.Column("asr_model", sa.String(length=512), nullable=False),
        sa.Column("language_hint", sa.String(length=16), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_recognitions_key", "recognitions", ["media_sha256", "asr_model", "language_hint"])
    op.create_index("ix_recognitions_created_at", "recognitions", ["created_at"])
    with op.batch_alter_table("ai_tasks") as batch:
        batch.add_column(sa.Column("after_task_id", sa.String(length=36), nullable=True))
        batch.create_index("ix_ai_tasks_after_task_id", ["after_task_id"])


def downgrade() -> None:
    with op.batch_alter_table("ai_tasks") as batch:
        batch.drop_index("ix_ai_tasks_after_task_id")
        batch.drop_column("after_task_id")
    op.drop_index("ix_recognitions_created_at", table_name="recognitions")
    op.drop_index("ix_recognitions_key", table_name="recognitions")
    op.drop_table("recognitions")
