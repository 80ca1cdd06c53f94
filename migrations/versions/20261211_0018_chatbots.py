"""chatbots: the draft (flows, nodes, edges), published versions, and numbers' default chatbot as a real reference

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-11
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

revision = '0018'
down_revision = '0017'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('chatbots',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('description', sa.String(length=500), nullable=True),
    sa.Column('is_active', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('variables', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('live_version', sa.Integer(), nullable=True),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('deleted_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_chatbots_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chatbots'))
    )
    op.create_index(op.f('ix_chatbots_organization_id'), 'chatbots', ['organization_id'], unique=False)
    op.create_index('uq_chatbots_organization_id_name_live', 'chatbots', ['organization_id', 'name'], unique=True, postgresql_where=sa.text('deleted_at IS NULL'))
    op.create_table('chatbot_flows',
    sa.Column('chatbot_id', sa.UUID(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('is_main', sa.Boolean(), server_default=sa.text('false'), nullable=False),
    sa.Column('variables', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['chatbot_id'], ['chatbots.id'], name=op.f('fk_chatbot_flows_chatbot_id_chatbots'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_chatbot_flows_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chatbot_flows'))
    )
    op.create_index(op.f('ix_chatbot_flows_chatbot_id'), 'chatbot_flows', ['chatbot_id'], unique=False)
    op.create_index(op.f('ix_chatbot_flows_organization_id'), 'chatbot_flows', ['organization_id'], unique=False)
    op.create_index('uq_chatbot_flows_chatbot_id_main', 'chatbot_flows', ['chatbot_id'], unique=True, postgresql_where=sa.text('is_main'))
    op.create_table('chatbot_versions',
    sa.Column('chatbot_id', sa.UUID(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('content', postgresql.JSONB(astext_type=sa.Text()), nullable=False),
    sa.Column('published_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('published_by_id', sa.UUID(), nullable=True),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['chatbot_id'], ['chatbots.id'], name=op.f('fk_chatbot_versions_chatbot_id_chatbots'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_chatbot_versions_organization_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['published_by_id'], ['users.id'], name=op.f('fk_chatbot_versions_published_by_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chatbot_versions')),
    sa.UniqueConstraint('chatbot_id', 'number', name=op.f('uq_chatbot_versions_chatbot_id_number'))
    )
    op.create_index(op.f('ix_chatbot_versions_organization_id'), 'chatbot_versions', ['organization_id'], unique=False)
    op.create_table('flow_nodes',
    sa.Column('flow_id', sa.UUID(), nullable=False),
    sa.Column('node_id', sa.String(length=100), nullable=False),
    sa.Column('type', sa.String(length=30), nullable=False),
    sa.Column('position_x', sa.Float(), nullable=False),
    sa.Column('position_y', sa.Float(), nullable=False),
    sa.Column('data', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['flow_id'], ['chatbot_flows.id'], name=op.f('fk_flow_nodes_flow_id_chatbot_flows'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_flow_nodes_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_nodes')),
    sa.UniqueConstraint('flow_id', 'node_id', name=op.f('uq_flow_nodes_flow_id_node_id'))
    )
    op.create_index(op.f('ix_flow_nodes_organization_id'), 'flow_nodes', ['organization_id'], unique=False)
    op.create_table('flow_edges',
    sa.Column('flow_id', sa.UUID(), nullable=False),
    sa.Column('edge_id', sa.String(length=100), nullable=False),
    sa.Column('source', sa.String(length=100), nullable=False),
    sa.Column('target', sa.String(length=100), nullable=False),
    sa.Column('source_handle', sa.String(length=100), nullable=True),
    sa.Column('organization_id', sa.UUID(), nullable=False),
    sa.Column('id', sa.UUID(), server_default=sa.text('gen_random_uuid()'), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False),
    sa.ForeignKeyConstraint(['flow_id', 'source'], ['flow_nodes.flow_id', 'flow_nodes.node_id'], name='fk_flow_edges_source_flow_nodes', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['flow_id', 'target'], ['flow_nodes.flow_id', 'flow_nodes.node_id'], name='fk_flow_edges_target_flow_nodes', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['flow_id'], ['chatbot_flows.id'], name=op.f('fk_flow_edges_flow_id_chatbot_flows'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_flow_edges_organization_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_flow_edges')),
    sa.UniqueConstraint('flow_id', 'edge_id', name=op.f('uq_flow_edges_flow_id_edge_id'))
    )
    op.create_index(op.f('ix_flow_edges_organization_id'), 'flow_edges', ['organization_id'], unique=False)
    # No chatbot existed before this revision: any id held until now names nothing.
    op.execute('UPDATE whatsapp_numbers SET default_chatbot_id = NULL WHERE default_chatbot_id IS NOT NULL')
    op.create_foreign_key(op.f('fk_whatsapp_numbers_default_chatbot_id_chatbots'), 'whatsapp_numbers', 'chatbots', ['default_chatbot_id'], ['id'], ondelete='SET NULL')


def downgrade() -> None:
    op.drop_constraint(op.f('fk_whatsapp_numbers_default_chatbot_id_chatbots'), 'whatsapp_numbers', type_='foreignkey')
    op.drop_index(op.f('ix_flow_edges_organization_id'), table_name='flow_edges')
    op.drop_table('flow_edges')
    op.drop_index(op.f('ix_flow_nodes_organization_id'), table_name='flow_nodes')
    op.drop_table('flow_nodes')
    op.drop_index(op.f('ix_chatbot_versions_organization_id'), table_name='chatbot_versions')
    op.drop_table('chatbot_versions')
    op.drop_index('uq_chatbot_flows_chatbot_id_main', table_name='chatbot_flows', postgresql_where=sa.text('is_main'))
    op.drop_index(op.f('ix_chatbot_flows_organization_id'), table_name='chatbot_flows')
    op.drop_index(op.f('ix_chatbot_flows_chatbot_id'), table_name='chatbot_flows')
    op.drop_table('chatbot_flows')
    op.drop_index('uq_chatbots_organization_id_name_live', table_name='chatbots', postgresql_where=sa.text('deleted_at IS NULL'))
    op.drop_index(op.f('ix_chatbots_organization_id'), table_name='chatbots')
    op.drop_table('chatbots')
