"""messages.origin: where a queued message's request came from (ip, user agent, request id), for the
timeline's `messages.queued` line, which the sends pool writes when it first takes the message

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-08
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('messages', sa.Column('origin', postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column('messages', 'origin')
