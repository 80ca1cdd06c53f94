"""identity: plans, organizations, users, departments

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25

Plans are seeded here; after this they are data, edited through PATCH /api/v1/plans/{code}.
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


# code, name, users, WhatsApp numbers, contacts, messages per month (None: unlimited)
SEED_PLANS = [
    ('free', 'Free', 3, 1, 1_000, 1_000),
    ('starter', 'Starter', 10, 2, 10_000, 10_000),
    ('professional', 'Professional', 50, 5, 100_000, 250_000),
    ('enterprise', 'Enterprise', None, None, None, None),
]


def upgrade() -> None:
    op.create_table('plans',
    sa.Column('code', sa.String(length=50), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('max_users', sa.Integer(), nullable=True),
    sa.Column('max_whatsapp_numbers', sa.Integer(), nullable=True),
    sa.Column('max_contacts', sa.Integer(), nullable=True),
    sa.Column('max_monthly_messages', sa.Integer(), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_plans')),
    sa.UniqueConstraint('code', name=op.f('uq_plans_code'))
    )
    plans = sa.table(
        'plans', sa.column('code'), sa.column('name'), sa.column('max_users'), sa.column('max_whatsapp_numbers'),
        sa.column('max_contacts'), sa.column('max_monthly_messages'),
    )
    op.bulk_insert(plans, [
        {'code': code, 'name': name, 'max_users': users, 'max_whatsapp_numbers': numbers,
         'max_contacts': contacts, 'max_monthly_messages': messages}
        for code, name, users, numbers, contacts, messages in SEED_PLANS
    ])
    op.create_table('departments',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_departments_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_departments'))
    )
    op.create_index(op.f('ix_departments_organization_id'), 'departments', ['organization_id'], unique=False)
    op.create_index('uq_departments_organization_id_name_live', 'departments', ['organization_id', 'name'], unique=True, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('department_members',
    sa.Column('department_id', sa.UUID(), nullable=False),
    sa.Column('user_id', sa.UUID(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['department_id'], ['departments.id'], name=op.f('fk_department_members_department_id_departments'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_department_members_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('department_id', 'user_id', name=op.f('pk_department_members'))
    )
    op.create_index(op.f('ix_department_members_user_id'), 'department_members', ['user_id'], unique=False)
    # add_column does not create enum types the way create_table does.
    bind = op.get_bind()
    sa.Enum('trialing', 'active', 'expired', name='subscription_status').create(bind)
    sa.Enum('super_admin', 'org_admin', 'agent', 'viewer', name='user_role').create(bind)
    sa.Enum('online', 'away', 'offline', name='agent_availability').create(bind)
    op.add_column('organizations', sa.Column('plan_code', sa.String(length=50), server_default=sa.text("'free'"), nullable=False))
    op.add_column('organizations', sa.Column('subscription_status', sa.Enum('trialing', 'active', 'expired', name='subscription_status'), server_default='trialing', nullable=False))
    op.add_column('organizations', sa.Column('trial_ends_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('organizations', sa.Column('suspended_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('organizations', sa.Column('suspension_reason', sa.String(length=500), nullable=True))
    op.add_column('organizations', sa.Column('timezone', sa.String(length=64), server_default=sa.text("'UTC'"), nullable=False))
    op.add_column('organizations', sa.Column('default_country', sa.String(length=2), nullable=True))
    op.add_column('organizations', sa.Column('billing_email', sa.String(length=320), nullable=True))
    op.add_column('organizations', sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False))
    op.create_foreign_key(op.f('fk_organizations_plan_code_plans'), 'organizations', 'plans', ['plan_code'], ['code'], onupdate='CASCADE')
    op.add_column('users', sa.Column('password_hash', sa.String(length=100), nullable=False))
    op.add_column('users', sa.Column('role', sa.Enum('super_admin', 'org_admin', 'agent', 'viewer', name='user_role'), nullable=False))
    op.add_column('users', sa.Column('deactivated_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('users', sa.Column('tokens_valid_after', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False))
    op.add_column('users', sa.Column('availability', sa.Enum('online', 'away', 'offline', name='agent_availability'), server_default='offline', nullable=False))
    op.add_column('users', sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('users', sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True))
    op.add_column('users', sa.Column('max_open_conversations', sa.Integer(), server_default=sa.text('20'), nullable=False))
    op.add_column('users', sa.Column('avatar_url', sa.String(length=1000), nullable=True))
    op.add_column('users', sa.Column('settings', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False))
    op.alter_column('users', 'organization_id',
               existing_type=sa.UUID(),
               nullable=True)
    op.drop_constraint(op.f('uq_users_email'), 'users', type_='unique')
    op.create_index('uq_users_email_live', 'users', ['email'], unique=True, postgresql_where=sa.text('deleted_at IS NULL'))


def downgrade() -> None:
    op.drop_index('uq_users_email_live', table_name='users', postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_unique_constraint(op.f('uq_users_email'), 'users', ['email'], postgresql_nulls_not_distinct=False)
    op.alter_column('users', 'organization_id',
               existing_type=sa.UUID(),
               nullable=False)
    op.drop_column('users', 'settings')
    op.drop_column('users', 'avatar_url')
    op.drop_column('users', 'max_open_conversations')
    op.drop_column('users', 'last_login_at')
    op.drop_column('users', 'last_seen_at')
    op.drop_column('users', 'availability')
    op.drop_column('users', 'tokens_valid_after')
    op.drop_column('users', 'deactivated_at')
    op.drop_column('users', 'role')
    op.drop_column('users', 'password_hash')
    op.drop_constraint(op.f('fk_organizations_plan_code_plans'), 'organizations', type_='foreignkey')
    op.drop_column('organizations', 'settings')
    op.drop_column('organizations', 'billing_email')
    op.drop_column('organizations', 'default_country')
    op.drop_column('organizations', 'timezone')
    op.drop_column('organizations', 'suspension_reason')
    op.drop_column('organizations', 'suspended_at')
    op.drop_column('organizations', 'trial_ends_at')
    op.drop_column('organizations', 'subscription_status')
    op.drop_column('organizations', 'plan_code')
    op.drop_index(op.f('ix_department_members_user_id'), table_name='department_members')
    op.drop_table('department_members')
    op.drop_index('uq_departments_organization_id_name_live', table_name='departments', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index(op.f('ix_departments_organization_id'), table_name='departments')
    op.drop_table('departments')
    op.drop_table('plans')
    for enum_name in ('subscription_status', 'user_role', 'agent_availability'):
        sa.Enum(name=enum_name).drop(op.get_bind(), checkfirst=True)
