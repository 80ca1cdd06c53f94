"""whatsapp_numbers: Meta's account restriction kept (restriction_info as Meta sent it) and what it holds:
every send until sends_held_until, business-initiated (template) sends until templates_held_until

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-09
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('whatsapp_numbers', sa.Column('restriction_info', postgresql.JSONB(astext_type=sa.Text()),
                                                nullable=True))
    op.add_column('whatsapp_numbers', sa.Column('sends_held_until', sa.DateTime(timezone=True), nullable=True))
    op.add_column('whatsapp_numbers', sa.Column('templates_held_until', sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column('whatsapp_numbers', 'templates_held_until')
    op.drop_column('whatsapp_numbers', 'sends_held_until')
    op.drop_column('whatsapp_numbers', 'restriction_info')
