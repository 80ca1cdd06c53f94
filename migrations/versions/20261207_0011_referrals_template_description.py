"""conversations: the click-to-WhatsApp ad a conversation came from and Meta's free entry point window;
message_templates: the description Meta gives with a rejection or a pause

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('conversations', sa.Column('referral', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('conversations', sa.Column('free_entry_until', sa.DateTime(timezone=True), nullable=True))
    op.add_column('message_templates', sa.Column('status_description', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('message_templates', 'status_description')
    op.drop_column('conversations', 'free_entry_until')
    op.drop_column('conversations', 'referral')
