"""Indexes in the order the lists are read: a client's AI tasks by coalesce(started_at, created_at)
descending then id, its videos by created_at then id. Without them every list page sorted all of
the client's rows (with their results) in a temporary B-tree: 60 ms a page at 10,000 tasks.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_ai_tasks_client_order",
        "ai_tasks",
        ["client_id", sa.text("coalesce(started_at, created_at) DESC"), "id"],
    )
    op.create_index("ix_videos_client_created", "videos", ["client_id", "created_at", "id"])


def downgrade() -> None:
    op.drop_index("ix_videos_client_created", table_name="videos")
    op.drop_index("ix_ai_tasks_client_order", table_name="ai_tasks")
