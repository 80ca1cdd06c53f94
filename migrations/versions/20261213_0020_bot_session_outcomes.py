"""bot session outcomes: when beat must act on a session, how it ended, its timeouts, the nodes it visited, its outside call

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-13
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0020'
down_revision = '0019'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('bot_sessions', sa.Column('due_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('bot_sessions', sa.Column('end_reason', sa.String(length=32), nullable=True))
    op.add_column('bot_sessions', sa.Column('timeouts', sa.Integer(), server_default='0', nullable=False))
    op.add_column('bot_sessions', sa.Column('path', postgresql.JSONB(astext_type=sa.Text()),
                                            server_default=sa.text("'[]'::jsonb"), nullable=False))
    op.add_column('bot_sessions', sa.Column('timed_out_nodes', postgresql.JSONB(astext_type=sa.Text()),
                                            server_default=sa.text("'[]'::jsonb"), nullable=False))
    op.add_column('bot_sessions', sa.Column('pending_call', postgresql.JSONB(astext_type=sa.Text()), nullable=True))
    op.create_index('ix_bot_sessions_due_at_live', 'bot_sessions', ['due_at'], unique=False,
                    postgresql_where=sa.text("status IN ('active', 'waiting') AND due_at IS NOT NULL"))
    op.create_index('ix_bot_sessions_chatbot_id_created_at', 'bot_sessions', ['chatbot_id', 'created_at'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_bot_sessions_chatbot_id_created_at', table_name='bot_sessions')
    op.drop_index('ix_bot_sessions_due_at_live', table_name='bot_sessions',
                  postgresql_where=sa.text("status IN ('active', 'waiting') AND due_at IS NOT NULL"))
    op.drop_column('bot_sessions', 'pending_call')
    op.drop_column('bot_sessions', 'timed_out_nodes')
    op.drop_column('bot_sessions', 'path')
    op.drop_column('bot_sessions', 'timeouts')
    op.drop_column('bot_sessions', 'end_reason')
    op.drop_column('bot_sessions', 'due_at')
