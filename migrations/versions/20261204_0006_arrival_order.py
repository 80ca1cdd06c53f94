"""arrival order for webhook rows; indexes for the inbox order and the dispatcher's claim

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Existing rows get numbers in physical order, which is close enough for rows already waiting.
    op.add_column('webhook_events', sa.Column('sequence', sa.BigInteger(), sa.Identity(always=False), nullable=False))
    op.create_index('ix_webhook_events_status_sequence', 'webhook_events', ['status', 'sequence'], unique=False)
    op.create_index('ix_messages_conversation_id_sequence', 'messages', ['conversation_id', 'sequence'], unique=False)
    op.create_index('ix_messages_number_id_pending', 'messages', ['number_id', 'next_attempt_at'], unique=False,
                    postgresql_where=sa.text("status IN ('queued', 'sending') AND direction = 'outbound'"))


def downgrade() -> None:
    op.drop_index('ix_messages_number_id_pending', table_name='messages',
                  postgresql_where=sa.text("status IN ('queued', 'sending') AND direction = 'outbound'"))
    op.drop_index('ix_messages_conversation_id_sequence', table_name='messages')
    op.drop_index('ix_webhook_events_status_sequence', table_name='webhook_events')
    op.drop_column('webhook_events', 'sequence')
