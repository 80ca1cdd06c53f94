"""Meta's business-scoped user ids: contacts.user_id (one contact per user id) and messages.from_user_id

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column('contacts', sa.Column('user_id', sa.String(length=64), nullable=True))
    op.create_index('uq_contacts_organization_id_user_id_live', 'contacts', ['organization_id', 'user_id'],
                    unique=True, postgresql_where=sa.text('user_id IS NOT NULL AND deleted_at IS NULL'))
    op.add_column('messages', sa.Column('from_user_id', sa.String(length=64), nullable=True))


def downgrade() -> None:
    op.drop_column('messages', 'from_user_id')
    op.drop_index('uq_contacts_organization_id_user_id_live', table_name='contacts',
                  postgresql_where=sa.text('user_id IS NOT NULL AND deleted_at IS NULL'))
    op.drop_column('contacts', 'user_id')
