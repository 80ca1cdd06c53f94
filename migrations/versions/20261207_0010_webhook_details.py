"""messages: forwarded flags of inbound messages; Meta's pricing and conversation objects from status webhooks

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('messages', sa.Column('forwarded', sa.Boolean(), server_default=sa.text('false'), nullable=False))
    op.add_column('messages', sa.Column('frequently_forwarded', sa.Boolean(), server_default=sa.text('false'),
                                        nullable=False))
    op.add_column('messages', sa.Column('pricing', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.add_column('messages', sa.Column('meta_conversation', postgresql.JSONB(astext_type=sa.Text()), nullable=True))


def downgrade() -> None:
    op.drop_column('messages', 'meta_conversation')
    op.drop_column('messages', 'pricing')
    op.drop_column('messages', 'frequently_forwarded')
    op.drop_column('messages', 'forwarded')
