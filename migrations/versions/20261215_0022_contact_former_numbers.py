"""contact former numbers: the numbers contacts had before Meta's user_changed_number, and when they changed

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-15
"""

from alembic import op
import sqlalchemy as sa

revision = '0022'
down_revision = '0021'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'contact_former_numbers',
        sa.Column('organization_id', sa.Uuid(), nullable=False),
        sa.Column('contact_id', sa.Uuid(), nullable=False),
        sa.Column('wa_id', sa.String(length=32), nullable=False),
        sa.Column('identity_key', sa.String(length=32), nullable=False),
        sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['contact_id'], ['contacts.id'],
                                name=op.f('fk_contact_former_numbers_contact_id_contacts'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_contact_former_numbers_organization_id_organizations'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_contact_former_numbers')),
    )
    op.create_index(op.f('ix_contact_former_numbers_contact_id'), 'contact_former_numbers', ['contact_id'],
                    unique=False)
    op.create_index('uq_contact_former_numbers_organization_id_identity_key', 'contact_former_numbers',
                    ['organization_id', 'identity_key'], unique=True)


def downgrade() -> None:
    op.drop_index('uq_contact_former_numbers_organization_id_identity_key', table_name='contact_former_numbers')
    op.drop_index(op.f('ix_contact_former_numbers_contact_id'), table_name='contact_former_numbers')
    op.drop_table('contact_former_numbers')
