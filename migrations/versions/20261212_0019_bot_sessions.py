"""bot sessions: a conversation's run of a chatbot version, one live per conversation

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-12
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0019'
down_revision = '0018'
branch_labels = None
depends_on = None

STATUS = postgresql.ENUM('active', 'waiting', 'handoff', 'ended', name='bot_session_status', create_type=False)


def upgrade() -> None:
    STATUS.create(op.get_bind(), checkfirst=False)
    op.create_table('bot_sessions',
    sa.Column('conversation_id', sa.UUID(), nullable=False),
    sa.Column('chatbot_id', sa.UUID(), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('status', STATUS, server_default='active', nullable=False),
    sa.Column('state', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('last_message_id', sa.UUID(), nullable=True),
    sa.Column('last_message_sequence', sa.BigInteger(), nullable=True),
    sa.Column('ended_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['chatbot_id'], ['chatbots.id'], name=op.f('fk_bot_sessions_chatbot_id_chatbots'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_bot_sessions_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['last_message_id'], ['messages.id'], name=op.f('fk_bot_sessions_last_message_id_messages'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_bot_sessions_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_bot_sessions'))
    )
    op.create_index(op.f('ix_bot_sessions_chatbot_id'), 'bot_sessions', ['chatbot_id'], unique=False)
    op.create_index(op.f('ix_bot_sessions_conversation_id'), 'bot_sessions', ['conversation_id'], unique=False)
    op.create_index(op.f('ix_bot_sessions_organization_id'), 'bot_sessions', ['organization_id'], unique=False)
    op.create_index('uq_bot_sessions_conversation_id_live', 'bot_sessions', ['conversation_id'], unique=True, postgresql_where=sa.text("status IN ('active', 'waiting', 'handoff')"))


def downgrade() -> None:
    op.drop_index('uq_bot_sessions_conversation_id_live', table_name='bot_sessions', postgresql_where=sa.text("status IN ('active', 'waiting', 'handoff')"))
    op.drop_index(op.f('ix_bot_sessions_organization_id'), table_name='bot_sessions')
    op.drop_index(op.f('ix_bot_sessions_conversation_id'), table_name='bot_sessions')
    op.drop_index(op.f('ix_bot_sessions_chatbot_id'), table_name='bot_sessions')
    op.drop_table('bot_sessions')
    STATUS.drop(op.get_bind(), checkfirst=False)
