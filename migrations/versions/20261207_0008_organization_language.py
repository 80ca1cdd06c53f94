"""organizations: language, what PyTake writes to customers in on its own (keyword confirmations)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from alembic import op
import sqlalchemy as sa

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Every existing organization keeps the English confirmations it sent until now.
    op.add_column('organizations', sa.Column('language', sa.String(length=8), server_default=sa.text("'en'"),
                                             nullable=False))


def downgrade() -> None:
    op.drop_column('organizations', 'language')
