"""whatsapp

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('message_templates',
    sa.Column('waba_id', sa.String(length=64), nullable=False),
    sa.Column('meta_template_id', sa.String(length=64), nullable=True),
    sa.Column('name', sa.String(length=512), nullable=False),
    sa.Column('language', sa.String(length=20), nullable=False),
    sa.Column('category', sa.String(length=20), nullable=False),
    sa.Column('status', sa.String(length=30), server_default='DRAFT', nullable=False),
    sa.Column('rejected_reason', sa.String(length=200), nullable=True),
    sa.Column('quality_score', sa.String(length=20), nullable=True),
    sa.Column('components', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('submit_error', sa.Text(), nullable=True),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_message_templates_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_message_templates'))
    )
    op.create_index(op.f('ix_message_templates_organization_id'), 'message_templates', ['organization_id'], unique=False)
    op.create_index('ix_message_templates_waba_id_name', 'message_templates', ['waba_id', 'name'], unique=False)
    op.create_index('uq_message_templates_org_waba_name_language_live', 'message_templates', ['organization_id', 'waba_id', 'name', 'language'], unique=True, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('webhook_events',
    sa.Column('organization_id', sa.UUID(), nullable=True),
    sa.Column('body', sa.LargeBinary(), nullable=False),
    sa.Column('body_sha256', sa.String(length=64), nullable=False),
    sa.Column('phone_number_ids', postgresql.ARRAY(sa.String(length=64)), nullable=False),
    sa.Column('fields', postgresql.ARRAY(sa.String(length=64)), nullable=False),
    sa.Column('status', sa.Enum('received', 'processing', 'processed', 'unroutable', 'failed', name='webhook_event_status'), server_default='received', nullable=False),
    sa.Column('has_messages', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('messages_processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('processed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_webhook_events_organization_id_organizations'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_webhook_events'))
    )
    op.create_index(op.f('ix_webhook_events_organization_id'), 'webhook_events', ['organization_id'], unique=False)
    op.create_index('ix_webhook_events_status_created_at', 'webhook_events', ['status', 'created_at'], unique=False)
    op.create_index('uq_webhook_events_body_sha256', 'webhook_events', ['body_sha256'], unique=True)
    op.create_table('whatsapp_numbers',
    sa.Column('waba_id', sa.String(length=64), nullable=False),
    sa.Column('phone_number_id', sa.String(length=64), nullable=False),
    sa.Column('display_phone_number', sa.String(length=32), nullable=False),
    sa.Column('verified_name', sa.String(length=200), nullable=True),
    sa.Column('quality_rating', sa.String(length=20), server_default='UNKNOWN', nullable=False),
    sa.Column('messaging_limit_tier', sa.String(length=40), nullable=True),
    sa.Column('throughput_mps', sa.Integer(), server_default=sa.text('80'), nullable=False),
    sa.Column('status', sa.Enum('connected', 'flagged', 'restricted', 'disconnected', name='number_status'), server_default='connected', nullable=False),
    sa.Column('default_chatbot_id', sa.UUID(), nullable=True),
    sa.Column('access_token_encrypted', sa.Text(), nullable=False),
    sa.Column('app_secret_encrypted', sa.Text(), nullable=False),
    sa.Column('verify_token_encrypted', sa.Text(), nullable=True),
    sa.Column('last_synced_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_sync_error', sa.Text(), nullable=True),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_whatsapp_numbers_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_whatsapp_numbers'))
    )
    op.create_index('ix_whatsapp_numbers_display_phone_number', 'whatsapp_numbers', ['display_phone_number'], unique=False)
    op.create_index(op.f('ix_whatsapp_numbers_organization_id'), 'whatsapp_numbers', ['organization_id'], unique=False)
    op.create_index('ix_whatsapp_numbers_waba_id', 'whatsapp_numbers', ['waba_id'], unique=False)
    op.create_index('uq_whatsapp_numbers_phone_number_id_live', 'whatsapp_numbers', ['phone_number_id'], unique=True, postgresql_where=sa.text('deleted_at IS NULL'))


def downgrade() -> None:
    op.drop_index('uq_whatsapp_numbers_phone_number_id_live', table_name='whatsapp_numbers', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_whatsapp_numbers_waba_id', table_name='whatsapp_numbers')
    op.drop_index(op.f('ix_whatsapp_numbers_organization_id'), table_name='whatsapp_numbers')
    op.drop_index('ix_whatsapp_numbers_display_phone_number', table_name='whatsapp_numbers')
    op.drop_table('whatsapp_numbers')
    op.drop_index('uq_webhook_events_body_sha256', table_name='webhook_events')
    op.drop_index('ix_webhook_events_status_created_at', table_name='webhook_events')
    op.drop_index(op.f('ix_webhook_events_organization_id'), table_name='webhook_events')
    op.drop_table('webhook_events')
    op.drop_index('uq_message_templates_org_waba_name_language_live', table_name='message_templates', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_message_templates_waba_id_name', table_name='message_templates')
    op.drop_index(op.f('ix_message_templates_organization_id'), table_name='message_templates')
    op.drop_table('message_templates')
    for enum_name in ('number_status', 'webhook_event_status'):
        sa.Enum(name=enum_name).drop(op.get_bind(), checkfirst=True)
