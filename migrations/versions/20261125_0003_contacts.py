"""contacts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Trigram search over name, phone and email (a trusted extension: the database owner may create it).
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table('attribute_definitions',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('label', sa.String(length=100), nullable=False),
    sa.Column('type', sa.Enum('text', 'number', 'date', 'boolean', name='attribute_type'), nullable=False),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_attribute_definitions_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_attribute_definitions'))
    )
    op.create_index(op.f('ix_attribute_definitions_organization_id'), 'attribute_definitions', ['organization_id'], unique=False)
    op.create_index('uq_attribute_definitions_organization_id_key', 'attribute_definitions', ['organization_id', 'key'], unique=True)
    op.create_table('contacts',
    sa.Column('wa_id', sa.String(length=32), nullable=False),
    sa.Column('phone_e164', sa.String(length=20), nullable=False),
    sa.Column('identity_key', sa.String(length=32), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('profile_name', sa.String(length=200), nullable=True),
    sa.Column('language', sa.String(length=20), nullable=True),
    sa.Column('custom_attributes', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('lifecycle_stage', sa.String(length=50), server_default=sa.text("'lead'"), nullable=False),
    sa.Column('lead_score', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('blocked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('marketing_consent', sa.Enum('unknown', 'opted_in', 'opted_out', name='consent_state'), server_default='unknown', nullable=False),
    sa.Column('utility_consent', sa.Enum('unknown', 'opted_in', 'opted_out', name='consent_state'), server_default='unknown', nullable=False),
    sa.Column('first_inbound_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_inbound_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('first_outbound_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('last_outbound_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('messages_in_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('messages_out_count', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_contacts_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contacts'))
    )
    op.create_index('ix_contacts_custom_attributes', 'contacts', ['custom_attributes'], unique=False, postgresql_using='gin', postgresql_ops={'custom_attributes': 'jsonb_path_ops'})
    op.create_index(op.f('ix_contacts_organization_id'), 'contacts', ['organization_id'], unique=False)
    op.create_index('ix_contacts_organization_id_created_at', 'contacts', ['organization_id', 'created_at'], unique=False)
    op.create_index('ix_contacts_organization_id_last_inbound_at', 'contacts', ['organization_id', 'last_inbound_at'], unique=False)
    op.create_index('ix_contacts_organization_id_lead_score', 'contacts', ['organization_id', 'lead_score'], unique=False)
    op.create_index('ix_contacts_organization_id_lifecycle_stage', 'contacts', ['organization_id', 'lifecycle_stage'], unique=False)
    op.create_index('ix_contacts_search_trgm', 'contacts', [sa.literal_column("(coalesce(name, '') || ' ' || phone_e164 || ' ' || coalesce(email, '')) gin_trgm_ops")], unique=False, postgresql_using='gin')
    op.create_index('uq_contacts_organization_id_identity_key_live', 'contacts', ['organization_id', 'identity_key'], unique=True, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('segments',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('filters', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_segments_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_segments'))
    )
    op.create_index(op.f('ix_segments_organization_id'), 'segments', ['organization_id'], unique=False)
    op.create_index('uq_segments_organization_id_name_live', 'segments', ['organization_id', 'name'], unique=True, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('tags',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('color', sa.String(length=20), nullable=True),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_tags_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_tags'))
    )
    op.create_index(op.f('ix_tags_organization_id'), 'tags', ['organization_id'], unique=False)
    op.create_index('uq_tags_organization_id_name', 'tags', ['organization_id', 'name'], unique=True)
    op.create_table('consent_events',
    sa.Column('contact_id', sa.UUID(), nullable=False),
    sa.Column('action', sa.Enum('opt_in', 'opt_out', name='consent_action'), nullable=False),
    sa.Column('scope', sa.Enum('marketing', 'utility', 'all', name='consent_scope'), nullable=False),
    sa.Column('source', sa.Enum('api', 'import', 'keyword', 'agent', 'flow', 'ctwa_ad', name='consent_source'), nullable=False),
    sa.Column('actor_user_id', sa.UUID(), nullable=True),
    sa.Column('actor', sa.String(length=200), nullable=True),
    sa.Column('evidence', sa.Text(), nullable=True),
    sa.Column('occurred_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['actor_user_id'], ['users.id'], name=op.f('fk_consent_events_actor_user_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_consent_events_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_consent_events_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_consent_events'))
    )
    op.create_index('ix_consent_events_contact_id_occurred_at', 'consent_events', ['contact_id', 'occurred_at'], unique=False)
    op.create_index(op.f('ix_consent_events_organization_id'), 'consent_events', ['organization_id'], unique=False)
    op.create_table('contact_tags',
    sa.Column('contact_id', sa.UUID(), nullable=False),
    sa.Column('tag_id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'], name=op.f('fk_contact_tags_contact_id_contacts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['tag_id'], ['tags.id'], name=op.f('fk_contact_tags_tag_id_tags'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('contact_id', 'tag_id', name=op.f('pk_contact_tags'))
    )
    op.create_index('ix_contact_tags_tag_id_contact_id', 'contact_tags', ['tag_id', 'contact_id'], unique=False)
    op.create_table('contact_imports',
    sa.Column('filename', sa.String(length=255), nullable=False),
    sa.Column('file_key', sa.String(length=500), nullable=False),
    sa.Column('size_bytes', sa.Integer(), nullable=False),
    sa.Column('encoding', sa.String(length=20), nullable=False),
    sa.Column('delimiter', sa.String(length=1), nullable=False),
    sa.Column('headers', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('created_by_id', sa.UUID(), nullable=True),
    sa.Column('job_id', sa.UUID(), nullable=True),
    sa.Column('report_key', sa.String(length=500), nullable=True),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['created_by_id'], ['users.id'], name=op.f('fk_contact_imports_created_by_id_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['job_id'], ['jobs.id'], name=op.f('fk_contact_imports_job_id_jobs'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_contact_imports_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_imports'))
    )
    op.create_index(op.f('ix_contact_imports_organization_id'), 'contact_imports', ['organization_id'], unique=False)


def downgrade() -> None:
    op.drop_index(op.f('ix_contact_imports_organization_id'), table_name='contact_imports')
    op.drop_table('contact_imports')
    op.drop_index('ix_contact_tags_tag_id_contact_id', table_name='contact_tags')
    op.drop_table('contact_tags')
    op.drop_index(op.f('ix_consent_events_organization_id'), table_name='consent_events')
    op.drop_index('ix_consent_events_contact_id_occurred_at', table_name='consent_events')
    op.drop_table('consent_events')
    op.drop_index('uq_tags_organization_id_name', table_name='tags')
    op.drop_index(op.f('ix_tags_organization_id'), table_name='tags')
    op.drop_table('tags')
    op.drop_index('uq_segments_organization_id_name_live', table_name='segments', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index(op.f('ix_segments_organization_id'), table_name='segments')
    op.drop_table('segments')
    op.drop_index('uq_contacts_organization_id_identity_key_live', table_name='contacts', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index('ix_contacts_search_trgm', table_name='contacts', postgresql_using='gin')
    op.drop_index('ix_contacts_organization_id_lifecycle_stage', table_name='contacts')
    op.drop_index('ix_contacts_organization_id_lead_score', table_name='contacts')
    op.drop_index('ix_contacts_organization_id_last_inbound_at', table_name='contacts')
    op.drop_index('ix_contacts_organization_id_created_at', table_name='contacts')
    op.drop_index(op.f('ix_contacts_organization_id'), table_name='contacts')
    op.drop_index('ix_contacts_custom_attributes', table_name='contacts', postgresql_using='gin', postgresql_ops={'custom_attributes': 'jsonb_path_ops'})
    op.drop_table('contacts')
    op.drop_index('uq_attribute_definitions_organization_id_key', table_name='attribute_definitions')
    op.drop_index(op.f('ix_attribute_definitions_organization_id'), table_name='attribute_definitions')
    op.drop_table('attribute_definitions')
    for enum_name in ('attribute_type', 'consent_state', 'consent_action', 'consent_scope', 'consent_source'):
        sa.Enum(name=enum_name).drop(op.get_bind(), checkfirst=True)
