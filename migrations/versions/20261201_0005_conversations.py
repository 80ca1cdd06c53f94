"""conversations

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('conversations',
    sa.Column('contact_id', sa.UUID(), nullable=False),
    sa.Column('number_id', sa.UUID(), nullable=False),
    sa.Column('status', sa.Enum('open', 'pending', 'closed', 'archived', name='conversation_status'), server_default='open', nullable=False),
    sa.Column('priority', sa.Enum('low', 'medium', 'high', 'urgent', name='conversation_priority'), server_default='medium', nullable=False),
    sa.Column('owner', sa.Enum('none', 'bot', 'agent', name='conversation_owner'), server_default='none', nullable=False),
    sa.Column('assigned_agent_id', sa.UUID(), nullable=True),
    sa.Column('department_id', sa.UUID(), nullable=True),
    sa.Column('waiting_since', sa.DateTime(timezone=True), nullable=True),
    sa.Column('window_expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_response_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_message_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_message_preview', sa.String(length=200), nullable=True),
    sa.Column('last_inbound_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_outbound_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unread_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('messages_in_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('messages_out_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['assigned_agent_id'], ['users.id'], name=op.f('fk_conversations_assigned_agent_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_conversations_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_conversations_department_id_departments'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['number_id'], ['whatsapp_numbers.id'], name=op.f('fk_conversations_number_id_whatsapp_numbers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_conversations_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_conversations'))
    )
    op.create_index('ix_conversations_assigned_agent_id_status', 'conversations', ['assigned_agent_id', 'status'], unique=False)
    op.create_index(op.f('ix_conversations_contact_id'), 'conversations', ['contact_id'], unique=False)
    op.create_index(op.f('ix_conversations_organization_id'), 'conversations', ['organization_id'], unique=False)
    op.create_index('ix_conversations_organization_id_last_message_at', 'conversations', ['organization_id', 'last_message_at', 'id'], unique=False)
    op.create_index('ix_conversations_waiting', 'conversations', ['organization_id', 'waiting_since'], unique=False, postgresql_where=sa.text('assigned_agent_id IS NULL AND waiting_since IS NOT NULL'))
    op.create_index('uq_conversations_number_id_contact_id', 'conversations', ['number_id', 'contact_id'], unique=True)
    op.create_table('messages',
    sa.Column('conversation_id', sa.UUID(), nullable=False),
    sa.Column('contact_id', sa.UUID(), nullable=False),
    sa.Column('number_id', sa.UUID(), nullable=False),
    sa.Column('direction', sa.Enum('inbound', 'outbound', name='message_direction'), nullable=False),
    sa.Column('type', sa.String(length=30), nullable=False),
    sa.Column('content', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('wamid', sa.Text(), nullable=True),
    sa.Column('sequence', sa.BigInteger(), sa.Identity(always=False), nullable=False),
    sa.Column('status', sa.Enum('queued', 'sending', 'sent', 'delivered', 'read', 'failed', 'unknown', 'received', name='message_status'), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('sent_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('delivered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('read_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('failed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error_code', sa.String(length=40), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('context_wamid', sa.Text(), nullable=True),
    sa.Column('referral', postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    sa.Column('sender_type', sa.Enum('customer', 'agent', 'bot', 'campaign', 'system', name='message_sender_type'), nullable=False),
    sa.Column('sender_user_id', sa.UUID(), nullable=True),
    sa.Column('campaign_id', sa.UUID(), nullable=True),
    sa.Column('template_id', sa.UUID(), nullable=True),
    sa.Column('idempotency_key', sa.String(length=200), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('routed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('media_id', sa.String(length=100), nullable=True),
    sa.Column('media_key', sa.String(length=500), nullable=True),
    sa.Column('media_error', sa.Text(), nullable=True),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_messages_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['conversation_id'], ['conversations.id'], name=op.f('fk_messages_conversation_id_conversations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['number_id'], ['whatsapp_numbers.id'], name=op.f('fk_messages_number_id_whatsapp_numbers'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_messages_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['sender_user_id'], ['users.id'], name=op.f('fk_messages_sender_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['template_id'], ['message_templates.id'], name=op.f('fk_messages_template_id_message_templates'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_messages'))
    )
    op.create_index(op.f('ix_messages_contact_id'), 'messages', ['contact_id'], unique=False)
    op.create_index('ix_messages_conversation_id_created_at', 'messages', ['conversation_id', 'created_at', 'id'], unique=False)
    op.create_index(op.f('ix_messages_organization_id'), 'messages', ['organization_id'], unique=False)
    op.create_index('ix_messages_organization_id_direction_created_at', 'messages', ['organization_id', 'direction', 'created_at'], unique=False)
    op.create_index('ix_messages_outbound_pending', 'messages', ['status', 'next_attempt_at'], unique=False, postgresql_where=sa.text("status IN ('queued', 'sending')"))
    op.create_index('ix_messages_unrouted', 'messages', ['conversation_id', 'sequence'], unique=False, postgresql_where=sa.text("direction = 'inbound' AND routed_at IS NULL"))
    op.create_index('uq_messages_organization_id_idempotency_key', 'messages', ['organization_id', 'idempotency_key'], unique=True, postgresql_where=sa.text('idempotency_key IS NOT NULL'))
    op.create_index('uq_messages_wamid', 'messages', ['wamid'], unique=True, postgresql_where=sa.text('wamid IS NOT NULL'))
    op.add_column('users', sa.Column('last_assigned_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('whatsapp_numbers', sa.Column('sends_paused_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('whatsapp_numbers', sa.Column('sends_paused_reason', sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column('whatsapp_numbers', 'sends_paused_reason')
    op.drop_column('whatsapp_numbers', 'sends_paused_at')
    op.drop_column('users', 'last_assigned_at')
    op.drop_index('uq_messages_wamid', table_name='messages', postgresql_where=sa.text('wamid IS NOT NULL'))
    op.drop_index('uq_messages_organization_id_idempotency_key', table_name='messages', postgresql_where=sa.text('idempotency_key IS NOT NULL'))
    op.drop_index('ix_messages_unrouted', table_name='messages', postgresql_where=sa.text("direction = 'inbound' AND routed_at IS NULL"))
    op.drop_index('ix_messages_outbound_pending', table_name='messages', postgresql_where=sa.text("status IN ('queued', 'sending')"))
    op.drop_index('ix_messages_organization_id_direction_created_at', table_name='messages')
    op.drop_index(op.f('ix_messages_organization_id'), table_name='messages')
    op.drop_index('ix_messages_conversation_id_created_at', table_name='messages')
    op.drop_index(op.f('ix_messages_contact_id'), table_name='messages')
    op.drop_table('messages')
    op.drop_index('uq_conversations_number_id_contact_id', table_name='conversations')
    op.drop_index('ix_conversations_waiting', table_name='conversations', postgresql_where=sa.text('assigned_agent_id IS NULL AND waiting_since IS NOT NULL'))
    op.drop_index('ix_conversations_organization_id_last_message_at', table_name='conversations')
    op.drop_index(op.f('ix_conversations_organization_id'), table_name='conversations')
    op.drop_index(op.f('ix_conversations_contact_id'), table_name='conversations')
    op.drop_index('ix_conversations_assigned_agent_id_status', table_name='conversations')
    op.drop_table('conversations')
    for enum_name in ('conversation_status', 'conversation_priority', 'conversation_owner', 'message_direction',
                      'message_status', 'message_sender_type'):
        sa.Enum(name=enum_name).drop(op.get_bind(), checkfirst=True)
