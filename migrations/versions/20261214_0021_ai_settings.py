"""ai settings: each organization's OpenAI-compatible endpoint for its chatbots' ai_prompt nodes, key encrypted

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-14
"""

from alembic import op
import sqlalchemy as sa

revision = '0021'
down_revision = '0020'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'ai_settings',
        sa.Column('organization_id', sa.Uuid(), nullable=False),
        sa.Column('base_url', sa.String(length=500), nullable=False),
        sa.Column('model', sa.String(length=200), nullable=False),
        sa.Column('api_key_encrypted', sa.Text(), nullable=False),
        sa.Column('api_key_hint', sa.String(length=4), nullable=False),
        sa.Column('is_enabled', sa.Boolean(), server_default=sa.text('true'), nullable=False),
        sa.Column('id', sa.Uuid(), server_default=sa.text('gen_random_uuid()'), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_ai_settings_organization_id_organizations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_ai_settings')),
        sa.UniqueConstraint('organization_id', name=op.f('uq_ai_settings_organization_id')),
    )


def downgrade() -> None:
    op.drop_table('ai_settings')
