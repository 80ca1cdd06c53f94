"""campaigns: bulk template campaigns and their recipients ledger (one row per campaign and contact)

Revision ID: 0023
Revises: 0022
Create Date: 2026-12-15
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0023'
down_revision = '0022'
branch_labels = None
depends_on = None

STATUS = postgresql.ENUM('draft', 'scheduled', 'running', 'paused', 'completed', 'cancelled', 'failed',
                         name='campaign_status', create_type=False)
STATE = postgresql.ENUM('pending', 'queued', 'retry', 'skipped', name='campaign_recipient_state', create_type=False)
DUE = sa.text("state IN ('pending', 'retry')")
CAMPAIGN_PENDING = sa.text("campaign_id IS NOT NULL AND status IN ('queued', 'sending')")


def upgrade() -> None:
    STATUS.create(op.get_bind(), checkfirst=False)
    STATE.create(op.get_bind(), checkfirst=False)
    op.create_table(
        'campaigns',
        sa.Column('name', sa.String(length=200), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('status', STATUS, server_default='draft', nullable=False),
        sa.Column('template_id', sa.UUID(), nullable=True),
        sa.Column('variables', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.Column('audience', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.Column('number_ids', postgresql.ARRAY(sa.UUID()), server_default=sa.text("'{}'::uuid[]"), nullable=False),
        sa.Column('rate_limit_per_second', sa.Integer(), nullable=True),
        sa.Column('delay_ms', sa.Integer(), nullable=True),
        sa.Column('attribution_hours', sa.Integer(), server_default=sa.text('72'), nullable=False),
        sa.Column('validity_hours', sa.Integer(), server_default=sa.text('72'), nullable=False),
        sa.Column('scheduled_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('paused_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('pause_reason', sa.String(length=60), nullable=True),
        sa.Column('pause_message', sa.Text(), nullable=True),
        sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('ticked_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('audience_resolved_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('recipients_total', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('suppressed_total', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('queued_total', sa.Integer(), server_default=sa.text('0'), nullable=False),
        sa.Column('limit_room', sa.Integer(), nullable=True),
        sa.Column('created_by_id', sa.UUID(), nullable=True),
        sa.Column('organization_id', sa.UUID(), nullable=False),
        sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_campaigns_created_by_id_users'),
                                ondelete='SET NULL'),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_campaigns_organization_id_organizations'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['template_id'], ['message_templates.id'],
                                name=op.f('fk_campaigns_template_id_message_templates'), ondelete='SET NULL'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns')),
    )
    op.create_index(op.f('ix_campaigns_organization_id'), 'campaigns', ['organization_id'], unique=False)
    op.create_index('ix_campaigns_status_scheduled_at', 'campaigns', ['status', 'scheduled_at'], unique=False)
    op.create_table(
        'campaign_recipients',
        sa.Column('campaign_id', sa.UUID(), nullable=False),
        sa.Column('contact_id', sa.UUID(), nullable=False),
        sa.Column('number_id', sa.UUID(), nullable=True),
        sa.Column('phone_e164', sa.String(length=20), nullable=True),
        sa.Column('state', STATE, nullable=False),
        sa.Column('reason', sa.String(length=40), nullable=True),
        sa.Column('message_id', sa.UUID(), nullable=True),
        sa.Column('attempts', sa.SmallInteger(), server_default=sa.text('0'), nullable=False),
        sa.Column('next_attempt_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['campaign_id'], ['campaigns.id'],
                                name=op.f('fk_campaign_recipients_campaign_id_campaigns'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_campaign_recipients')),
    )
    op.create_index('uq_campaign_recipients_campaign_id_contact_id', 'campaign_recipients',
                    ['campaign_id', 'contact_id'], unique=True)
    op.create_index('ix_campaign_recipients_due', 'campaign_recipients', ['campaign_id', 'next_attempt_at'],
                    unique=False, postgresql_where=DUE)
    op.create_index('ix_messages_campaign_pending', 'messages', ['campaign_id'], unique=False,
                    postgresql_where=CAMPAIGN_PENDING)


def downgrade() -> None:
    op.drop_index('ix_messages_campaign_pending', table_name='messages', postgresql_where=CAMPAIGN_PENDING)
    op.drop_index('ix_campaign_recipients_due', table_name='campaign_recipients', postgresql_where=DUE)
    op.drop_index('uq_campaign_recipients_campaign_id_contact_id', table_name='campaign_recipients')
    op.drop_table('campaign_recipients')
    op.drop_index('ix_campaigns_status_scheduled_at', table_name='campaigns')
    op.drop_index(op.f('ix_campaigns_organization_id'), table_name='campaigns')
    op.drop_table('campaigns')
    STATE.drop(op.get_bind(), checkfirst=False)
    STATUS.drop(op.get_bind(), checkfirst=False)
