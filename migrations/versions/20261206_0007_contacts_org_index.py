"""contacts: drop ix_contacts_organization_id, which the (organization_id, ...) indexes make redundant

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06
"""

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every lookup by organization alone (the plan's count, the list's bitmap scans, the cascade of an
    # organization's deletion) uses ix_contacts_organization_id_created_at or one of its siblings
    # instead, as well; the import no longer pays an insert into it per contact.
    op.drop_index('ix_contacts_organization_id', table_name='contacts')


def downgrade() -> None:
    op.create_index('ix_contacts_organization_id', 'contacts', ['organization_id'], unique=False)
